/**
 * `@vendorflow/dev-stack` (private): what the whole-system tests, `load/` and `bench/` run vendorflow
 * with. `Stack` launches our processes (one at a time, or the split deployment on Redis), `Process`
 * is one of them, `Client` drives a stack as a client and reads what the vendors saw, `Load` is the
 * load generator (`Wrk` drives wrk instead where it is installed) and `Stats` the arithmetic of a
 * run.
 *
 * @since 0.0.0
 */
export * as Client from "./Client.ts"
export * as Load from "./Load.ts"
export * as Process from "./Process.ts"
export * as Stack from "./Stack.ts"
export * as Stats from "./Stats.ts"
export * as Wrk from "./Wrk.ts"
