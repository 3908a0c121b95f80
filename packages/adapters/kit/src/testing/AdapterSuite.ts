/**
 * The conformance suite every vendor adapter runs in its own tests:
 * `AdapterSuite.suite("Acme Credit", { definition, payload, answer, ... })`.
 *
 * Each check builds the definition against a fresh `VendorSimulator` (a real local HTTP server) and
 * drives it the way the engine and a misbehaving vendor would: the request and its idempotency key,
 * good, malformed and garbage answers, 400/401/404/429/500, a timeout and a dropped connection, the
 * declared PII after cleaning and, for async vendors, signed, tampered, unsigned, stale, replayed,
 * malformed, duplicate and out-of-order callbacks and the overdue-job status check. A known gap is
 * written down in `skip` with its reason and reported as skipped, never as passed.
 *
 * `run` returns each check's outcome instead of registering tests, which is how the kit's own
 * tests prove that broken adapters are caught by name.
 *
 * @since 0.1.0
 */
import { assert, describe, it } from "@effect/vitest"
import { NodeHttpClient } from "@effect/platform-node"
import type { VendorDefinition } from "@vendorflow/core"
import { Cause, Duration, Effect, Exit } from "effect"
import { callbackChecks } from "./AdapterSuite/CallbackChecks.ts"
import { callChecks } from "./AdapterSuite/CallChecks.ts"
import {
  asyncVendorCheck,
  type Check,
  CheckFailed,
  type CheckName,
  everyVendorCheck,
  makeContext,
  type Options,
  shortTimeout,
  statusCheck
} from "./AdapterSuite/Context.ts"

export { checkNames, type CheckName, type Options } from "./AdapterSuite/Context.ts"

/**
 * One check's outcome.
 *
 * @category models
 */
export interface CheckResult {
  readonly check: CheckName
  readonly outcome: "passed" | "failed" | "skipped"
  /** Why it failed, or the reason it was skipped. */
  readonly message?: string | undefined
}

const checks: Readonly<Record<CheckName, Check>> = { ...callChecks, ...callbackChecks }

/**
 * The checks that apply to a definition: the async ones only to async vendors, the status check
 * only to vendors that define one.
 *
 * @category checks
 */
export const applicable = (definition: VendorDefinition.VendorDefinition): ReadonlyArray<CheckName> => {
  if (definition.mode === "sync") return everyVendorCheck
  return definition.checkStatus === undefined
    ? [...everyVendorCheck, ...asyncVendorCheck]
    : [...everyVendorCheck, ...asyncVendorCheck, statusCheck]
}

/**
 * Runs one check against a fresh simulator; a defect in the adapter fails the check, it does not
 * crash the run.
 *
 * @category running
 */
export const runCheck = (name: CheckName, options: Options): Effect.Effect<CheckResult> => {
  const skipped = options.skip?.[name]
  if (skipped !== undefined) return Effect.succeed({ check: name, outcome: "skipped", message: skipped })
  const timeout = name === "classifies a timeout as transient" ? shortTimeout : Duration.seconds(5)
  return Effect.gen(function* () {
    const context = yield* makeContext(options, timeout)
    yield* checks[name](context)
  }).pipe(
    Effect.scoped,
    Effect.provide(NodeHttpClient.layerUndici),
    Effect.exit,
    Effect.map((exit): CheckResult => {
      if (Exit.isSuccess(exit)) return { check: name, outcome: "passed" }
      const failure = Cause.findErrorOption(exit.cause)
      const message =
        failure._tag === "Some" && failure.value instanceof CheckFailed
          ? failure.value.message
          : `the adapter broke: ${Cause.pretty(exit.cause).split("\n")[0] ?? ""}`
      return { check: name, outcome: "failed", message }
    })
  )
}

/**
 * Runs every applicable check, one after another, and reports each.
 *
 * @category running
 */
export const run = (options: Options): Effect.Effect<ReadonlyArray<CheckResult>> =>
  Effect.forEach(applicable(options.definition), (name) => runCheck(name, options))

/**
 * Registers the suite in vitest: one test per applicable check, a skipped one for each known gap.
 *
 * @category running
 */
export const suite = (name: string, options: Options): void => {
  describe(`${name}: AdapterSuite`, () => {
    for (const check of applicable(options.definition)) {
      const reason = options.skip?.[check]
      // A known gap shows up as skipped, with its reason in the name, never as passed.
      const name = reason === undefined ? check : `${check} (skipped: ${reason})`
      it.live.skipIf(reason !== undefined)(name, () =>
        Effect.map(runCheck(check, options), (result) => {
          if (result.outcome === "failed") assert.fail(`${check}: ${result.message ?? ""}`)
        })
      )
    }
  })
}
