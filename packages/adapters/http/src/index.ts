/**
 * @vendorflow/adapter-http: a generic JSON-over-HTTP vendor adapter configured by data. As an
 * adapter package it provides no vendor of its own but `configure`, which makes one from the options
 * of a `vendors.<name>` entry in `vendorflow.config.json` (see `HttpVendor`).
 *
 * @since 0.1.0
 */
import type { VendorDefinition } from "@vendorflow/adapter-kit"
import * as HttpVendor from "./HttpVendor.ts"

export { HttpVendor }

/**
 * Makes a vendor from its options (the adapter-package entry point the runtime calls).
 *
 * @category adapter
 */
export const configure: NonNullable<VendorDefinition.AdapterModule["configure"]> = HttpVendor.configure
