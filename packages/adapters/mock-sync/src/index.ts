/**
 * @vendorflow/adapter-mock-sync: the reference synchronous vendor (a real HTTP server) and its
 * adapter, plus the server plumbing every mock vendor shares.
 *
 * @since 0.1.0
 */
export * as MockSyncServer from "./MockSyncServer.ts"
export * as MockSyncVendor from "./MockSyncVendor.ts"
export * as MockVendorServer from "./MockVendorServer.ts"
export * as StubServer from "./StubServer.ts"
