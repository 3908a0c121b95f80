/**
 * @vendorflow/adapter-kit: what a vendor adapter is written with. `defineVendor` describes a vendor
 * as data and a few functions; `transient`, `rateLimited` and `permanent` classify what its answers
 * mean; `WebhookSignature` signs and checks callbacks. The simulator is in
 * `@vendorflow/adapter-kit/simulator`, the conformance suite in `@vendorflow/adapter-kit/testing`.
 *
 * An adapter package exports its definitions as `vendors` (see `AdapterModule`) and declares the
 * core it was built for as a peer dependency on `@vendorflow/core`.
 *
 * @since 0.1.0
 */
import { VendorDefinition } from "@vendorflow/core"

export { Cleaner, Job, Vendor, VendorDefinition, WebhookSignature } from "@vendorflow/core"

/**
 * Defines a vendor (see `VendorDefinition.defineVendor`).
 *
 * @category constructors
 */
export const defineVendor = VendorDefinition.defineVendor

/**
 * A transient failure: retried with backoff.
 *
 * @category classification
 */
export const transient = VendorDefinition.transient

/**
 * The vendor's rate limit was hit: retried after the given wait.
 *
 * @category classification
 */
export const rateLimited = VendorDefinition.rateLimited

/**
 * A permanent failure: never retried.
 *
 * @category classification
 */
export const permanent = VendorDefinition.permanent

/**
 * What an adapter package's entry module exports (see `VendorDefinition.AdapterModule`).
 *
 * @category models
 */
export type AdapterModule = VendorDefinition.AdapterModule
