/**
 * `@vendorflow/adapter-kit/simulator`: local HTTP servers for adapter tests: the scripted
 * `VendorSimulator` (which the reference mock vendors are built on), its `FaultScript` text form and
 * `RateLimit`, a recording `StubServer` (a webhook receiver, or a vendor that answers what a test
 * says), signed `Callbacks` and the `LocalServer` plumbing under them.
 *
 * @since 0.1.0
 */
export * as Callbacks from "./Callbacks.ts"
export * as FaultScript from "./FaultScript.ts"
export * as LocalServer from "./LocalServer.ts"
export * as RateLimit from "./RateLimit.ts"
export * as StubServer from "./StubServer.ts"
export * as VendorSimulator from "./VendorSimulator.ts"
