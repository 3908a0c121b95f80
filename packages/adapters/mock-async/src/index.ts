/**
 * @vendorflow/adapter-mock-async: the reference asynchronous vendor (a real HTTP server that answers
 * by signed webhook) and its adapter. As an adapter package it provides the `async` vendor
 * (`vendors`).
 *
 * @since 0.1.0
 */
import type { VendorDefinition } from "@vendorflow/adapter-kit"
import * as MockAsyncVendor from "./MockAsyncVendor.ts"

export * as MockAsyncServer from "./MockAsyncServer.ts"
export { MockAsyncVendor }

/**
 * The vendors this adapter package provides.
 *
 * @category adapter
 */
export const vendors: ReadonlyArray<VendorDefinition.VendorDefinition> = [MockAsyncVendor.definition]
