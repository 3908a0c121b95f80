/**
 * @vendorflow/adapter-mock-sync: the reference synchronous vendor (a real HTTP server) and its
 * adapter, plus what every mock vendor shares (server plumbing, adapter base) and a stub server
 * for tests.
 *
 * @since 0.1.0
 */
export * as MockSyncServer from "./MockSyncServer.ts"
export * as MockSyncVendor from "./MockSyncVendor.ts"
export * as MockVendorAdapter from "./MockVendorAdapter.ts"
export * as MockVendorServer from "./MockVendorServer.ts"
export * as StubServer from "./StubServer.ts"
