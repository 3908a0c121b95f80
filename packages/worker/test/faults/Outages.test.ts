/**
 * A vendor-wide 5xx burst (`MOCK_SYNC_OUTAGES`, see the mock's `FaultScript`) against the split
 * deployment on Redis, with the circuit breaker on (shared by two workers through Redis): the vendor
 * answers 503 to every call for a while, the circuit opens after CIRCUIT_FAILURES of them, and the
 * jobs wait without spending attempts until a probe finds the vendor back.
 */
import { assert, describe, it } from "@effect/vitest"
import { type Duration, Effect } from "effect"
import { Client } from "@vendorflow/dev-stack"
import * as Stack from "../support/Stack.ts"
import * as Audit from "./Audit.ts"

const limit = Audit.vendorLimit

/** `complete after 200`: a job's outcome and what the vendor answered its last call. */
const last = (job: Client.JobView | undefined, calls: ReadonlyArray<Client.Arrival>) =>
  `${job?.status ?? "missing"} after ${calls
    .slice(-1)
    .map((call) => call.fault ?? String(call.status))
    .join(",")}`

/**
 * The vendor answers 503 to every call in `window`; 30 jobs must all complete, each with 503s in
 * the outage and then one good answer, and no attempt spent while the circuit held it back. With
 * fast 503s, the open circuit must also have kept most calls away (fewer calls in the outage than
 * jobs); slow 503s are all in flight before the first one fails.
 */
const outage = (options: {
  readonly window: string
  readonly fast503s: boolean
  readonly within: Duration.Input
  readonly row: string
}) =>
  Effect.gen(function* () {
    const stack = yield* Stack.start({
      workers: 2,
      redisUrl: Stack.redisUrl,
      vendors: ["sync"],
      syncLimit: `${limit}/1s`,
      syncLatency: "20-80",
      syncEnv: { MOCK_SYNC_OUTAGES: options.window },
      env: Audit.pacedEnv
    })
    const started = Date.now()
    const ids = yield* Audit.submitMany(stack, 30, "sync")
    const outcome = yield* Audit.settle(stack, ids, options.within)
    const seconds = (Date.now() - started) / 1000
    const calls = Audit.byJob(outcome.sync)
    assert.deepStrictEqual(
      Audit.tallyOf(ids.map((id) => last(outcome.jobs.get(id), calls.get(id) ?? []))),
      { "complete after 200": 30 },
      "every job completes with one good answer at the end"
    )
    assert.deepStrictEqual(
      outcome.sync.filter((call) => call.status !== 200 && call.fault !== "outage:503"),
      [],
      "every failed call was in the outage"
    )
    assert.deepStrictEqual(
      ids.filter((id) => outcome.jobs.get(id)?.attempts !== (calls.get(id) ?? []).length),
      [],
      "held back by the open circuit: no attempt spent"
    )
    const inOutage = outcome.sync.filter((call) => call.fault === "outage:503").length
    // Without the circuit every job would call several times while the vendor is down; with it, a
    // few calls (those in flight when it opened, and the probes) reach the vendor.
    if (options.fast503s) assert.isBelow(inOutage, ids.length, "calls that reached the vendor while it was down")
    const worst = Audit.assertLimitHeld(outcome.sync, limit)
    yield* Audit.report(
      options.row,
      outcome,
      `${outcome.sync.length} calls, ${inOutage} in the outage; worst 1 s ${worst}/${limit}; ${seconds.toFixed(0)} s`
    )
  })

describe("vendor outage", () => {
  it.live(
    "5xx burst: the vendor down for 4 s; the circuit opens, jobs wait without spending attempts, all complete",
    () =>
      outage({
        window: "503:300-4300",
        fast503s: true,
        within: "30 seconds",
        row: "5xx burst: vendor down 4 s, circuit at its defaults"
      })
  )

  // Every time the circuit turns a job away (open, or half-open while a probe runs) the job is
  // handed back; a vendor whose 503s take 3 s keeps the circuit half-open for 3 s per probe, so
  // waiting jobs are turned away about once a second. Were each hand-back counted as a delivery,
  // the queue would dead-letter them at QUEUE_DELIVERY_LIMIT while their records stay `pending`
  // (docs/reliability.md).
  it.live("5xx burst with slow 503s, circuit at its defaults: no job is dead-lettered while it waits", () =>
    outage({
      window: "503/3000:300-9300",
      fast503s: false,
      within: "45 seconds",
      row: "5xx burst: vendor down 9 s answering 503 after 3 s, circuit at its defaults"
    })
  )
})
