/**
 * @vendorflow/standalone: vendorflow in one process (the API, the worker and both mock vendors, in
 * memory), as a layer and as the bin `vendorflow`.
 *
 * @since 0.1.0
 */
export * as AllInOne from "./AllInOne.ts"
