/**
 * `@vendorflow/adapter-kit/testing`: `AdapterSuite`, the conformance suite an adapter package runs
 * in its vitest tests. Needs `@effect/vitest` (an optional peer dependency).
 *
 * @since 0.1.0
 */
export * as AdapterSuite from "./AdapterSuite.ts"
