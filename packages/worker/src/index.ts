/**
 * @vendorflow/worker: the queue consumer that calls vendors; bin `vendorflow-worker`.
 *
 * @since 0.1.0
 */
export * as Worker from "./Worker.ts"
