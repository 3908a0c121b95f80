/**
 * `@vendorflow/adapter-kit/simulator`: local HTTP servers for adapter tests: the scripted
 * `VendorSimulator`, a recording `StubServer` (a webhook receiver, or a vendor that answers what a
 * test says), signed `Callbacks` and the `LocalServer` plumbing under them.
 *
 * @since 0.1.0
 */
export * as Callbacks from "./Callbacks.ts"
export * as LocalServer from "./LocalServer.ts"
export * as StubServer from "./StubServer.ts"
export * as VendorSimulator from "./VendorSimulator.ts"
