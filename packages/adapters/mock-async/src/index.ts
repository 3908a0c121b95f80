/**
 * @vendorflow/adapter-mock-async: the reference asynchronous vendor (a real HTTP server that answers
 * by signed webhook) and its adapter.
 *
 * @since 0.1.0
 */
export * as MockAsyncServer from "./MockAsyncServer.ts"
export * as MockAsyncVendor from "./MockAsyncVendor.ts"
