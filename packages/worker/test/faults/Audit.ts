/**
 * What every fault scenario checks once its jobs are in, and the figures it reports: every accepted
 * job finished (complete, or failed with a reason), none lost, none completed twice (its version,
 * `updated_at`, result and error are the same a quiet while after it was first seen finished), no
 * job called more often than its attempts allow (counted at the mock vendor, which is what a vendor
 * bills), every dead letter matching a failed job and every failed job dead-lettered, no callback
 * answered 2xx and not applied (the async vendor's own record against the jobs), the vendor's rate
 * limit held (the worst one-second window of its arrivals), and how far apart a job's
 * repeated calls came (backoff, `Retry-After`).
 */
import { assert } from "@effect/vitest"
import { Cleaner } from "@vendorflow/core"
import { type Duration, Effect, Schedule } from "effect"
import { isDeepStrictEqual } from "node:util"
import { Client } from "@vendorflow/dev-stack"
import * as Stack from "../support/Stack.ts"

/** Every mock vendor's own limit: it answers 429 past it (calls per second). */
export const vendorLimit = 20

/**
 * What the workers are told to pace at: 75% of the vendor's limit. The limiter keeps 5% headroom,
 * which leaves a vendor only ~50 ms of arrival jitter per second; on a loaded two-core machine the
 * vendor's own event loop bunches arrivals by more than that (see docs/reliability.md).
 */
export const workerPace = 15

/** The pace for both vendors' adapters, as workers read it. */
export const pacedEnv = {
  VENDOR_SYNC_RATE_LIMIT: `${workerPace}/1s`,
  VENDOR_ASYNC_RATE_LIMIT: `${workerPace}/1s`
}

/** How long the vendors' records must stay unchanged before the final reading. */
export const quietFor = 2000

/**
 * Submits `count` jobs for `vendor` and returns the accepted ids; every POST must be accepted. All
 * at once (50 at a time), or `perSecond` a second, as a steady client would.
 */
export const submitMany = (
  stack: Stack.Stack,
  count: number,
  vendor: "sync" | "async" | ((i: number) => string),
  perSecond?: number
) =>
  Effect.gen(function* () {
    const submitted = yield* Effect.forEach(
      Array.from({ length: count }, (_, i) => i),
      (i) =>
        Client.submit(stack.api, { vendor: typeof vendor === "function" ? vendor(i) : vendor, n: i }).pipe(
          Effect.delay(perSecond === undefined ? 0 : 1000 / perSecond)
        ),
      { concurrency: perSecond === undefined ? 50 : 1 }
    )
    assert.deepStrictEqual(
      submitted.filter((r) => r.status !== 200),
      [],
      "every POST /jobs accepted"
    )
    return submitted.map((r) => r.body.request_id ?? "")
  })

/** Waits (at most `within`) until the sync vendor has answered at least `n` calls, reading its record every `every`. */
export const answered = (
  stack: Stack.Stack,
  n: number,
  within: Duration.Input = "60 seconds",
  every: Duration.Input = "50 millis"
) =>
  Client.arrivals(stack.sync).pipe(
    Effect.repeat({ schedule: Schedule.spaced(every), until: (all) => all.length >= n }),
    Effect.timeoutOrElse({ duration: within, orElse: () => Effect.die(new Error(`fewer than ${n} calls`)) })
  )

// The vendors' records, empty for a vendor the stack does not run.
const records = (stack: Stack.Stack) =>
  Effect.all([
    stack.vendors.includes("sync") ? Client.arrivals(stack.sync) : Effect.succeed([]),
    stack.vendors.includes("async") ? Client.arrivals(stack.async) : Effect.succeed([]),
    stack.vendors.includes("async") ? Client.callbacks(stack.async) : Effect.succeed([])
  ])

// Polls the vendors' records until they have not changed for `quietFor` ms (and hold at least
// `callbacks` callbacks, when the scenario knows how many are coming).
const quiet = (stack: Stack.Stack, expected: { readonly callbacks?: number | undefined }) =>
  Effect.gen(function* () {
    let last = ""
    let since = Date.now()
    yield* Effect.gen(function* () {
      const [sync, async, calls] = yield* records(stack)
      if (calls.length < (expected.callbacks ?? 0)) since = Date.now()
      const reading = `${sync.length}/${async.length}/${calls.length}`
      if (reading !== last) {
        last = reading
        since = Date.now()
      }
    }).pipe(
      Effect.repeat({ schedule: Schedule.spaced("250 millis"), until: () => Date.now() - since >= quietFor }),
      Effect.timeoutOrElse({
        duration: "60 seconds",
        orElse: () => Effect.die(new Error(`the vendors never went quiet (${last})`))
      })
    )
  })

// Why jobs are unfinished: their statuses, and whether the queue dead-lettered them meanwhile.
const diagnose = (stack: Stack.Stack, unfinished: ReadonlyArray<Client.JobView>) =>
  Effect.gen(function* () {
    const letters = [
      ...(yield* Client.deadLetters(stack.redisUrl, stack.prefix, "sync")),
      ...(yield* Client.deadLetters(stack.redisUrl, stack.prefix, "async"))
    ]
    const stuck = new Set(unfinished.map((job) => job.request_id))
    const dead = letters.filter((letter) => stuck.has(letter.jobId))
    const reasons = [...new Set(dead.map((letter) => letter.reason))]
    const statuses = tallyOf(
      unfinished.map(
        (job) =>
          `${job.status}, attempts ${job.attempts}${job.error === undefined ? "" : `, error ${job.error.reason}`}`
      )
    )
    return new Error(
      `${unfinished.length} job(s) unfinished (${JSON.stringify(statuses)}); ` +
        `${dead.length} of them dead-lettered by the queue while their record is unfinished` +
        (reasons.length === 0 ? "" : ` (${reasons.join("; ")})`) +
        `; e.g. ${JSON.stringify(unfinished.slice(0, 2))}`
    )
  })

/** Counts of each distinct string. */
export const tallyOf = (items: ReadonlyArray<string>): Readonly<Record<string, number>> =>
  items.reduce<Record<string, number>>((counts, item) => ({ ...counts, [item]: (counts[item] ?? 0) + 1 }), {})

const fingerprint = (job: Client.JobView) =>
  JSON.stringify([job.status, job.version, job.updated_at, job.result ?? null, job.error ?? null])

// Whether what happened to a job at `at` (a call, a callback, a dead letter) was of a run before
// its current one (see `settle`'s `runStartedAt`).
const ofEarlierRun = (runStartedAt: ReadonlyMap<string, number> | undefined, jobId: string, at: number) =>
  at < (runStartedAt?.get(jobId) ?? 0)

/** The figures of one scenario. */
export interface Outcome {
  readonly accepted: number
  /** Jobs the vendors saw that no accepted submission named, accounted for by the scenario. */
  readonly unnamed: number
  readonly complete: number
  /** Failed jobs by `error.reason`. */
  readonly failed: Readonly<Record<string, number>>
  /** Jobs whose stored outcome changed after they were first seen finished. */
  readonly duplicates: number
  /** Vendor calls, counted at the mock vendors. */
  readonly calls: number
  /** Calls beyond a job's attempts, summed over the jobs: calls a second live attempt made. */
  readonly duplicateCalls: number
  /** The dead letters of the scenario's vendors. */
  readonly deadLetters: number
  /** Accepted jobs that never finished or are gone. */
  readonly lost: number
  /** Callbacks our webhook answered 2xx whose data no job holds (see {@link callbacksNotApplied}). */
  readonly unapplied: number
  /** The jobs as last read. */
  readonly jobs: ReadonlyMap<string, Client.JobView>
  /** Both vendors' arrivals, oldest first. */
  readonly sync: ReadonlyArray<Client.Arrival>
  readonly async: ReadonlyArray<Client.Arrival>
  readonly callbacks: ReadonlyArray<Client.Callback>
}

/**
 * Waits (at most `within`) for every job to finish, then for the vendors to go quiet, then reads
 * every job again; asserts that none is lost, none changed after it finished, and each failed one
 * says why.
 */
export const settle = (
  stack: Stack.Stack,
  ids: ReadonlyArray<string>,
  within: Duration.Input,
  expected: {
    readonly callbacks?: number | undefined
    /**
     * When each job's current run began (an operator's retry, a lost job posted again): its earlier
     * calls, callbacks and dead letters were other runs'.
     */
    readonly runStartedAt?: ReadonlyMap<string, number> | undefined
    /**
     * Of the jobs the vendors saw that no id in `ids` names, those the scenario accounts for (a
     * job stored although its client was answered 503): their calls, callbacks and dead letters
     * are left out, as a run not held against anyone.
     */
    readonly unnamed?: ((strangers: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<string>>) | undefined
  } = {}
) =>
  Effect.gen(function* () {
    const { done: first, unfinished } = yield* Client.pollFinished(stack.api, ids, within)
    if (unfinished.length > 0) return yield* Effect.die(yield* diagnose(stack, unfinished))
    yield* quiet(stack, expected)
    const jobs = new Map(
      yield* Effect.forEach(ids, (id) => Effect.map(Client.readJob(stack.api, id), (job) => [id, job] as const), {
        concurrency: 20
      })
    )
    const changed = ids.filter((id) => {
      const before = first.get(id)
      const after = jobs.get(id)
      return before === undefined || after === undefined || fingerprint(before) !== fingerprint(after)
    })
    const all = [...jobs.values()]
    const lost = all.filter((job) => job.status !== "complete" && job.status !== "failed").length
    const failed: Record<string, number> = {}
    for (const job of all.filter((job) => job.status === "failed")) {
      const reason = job.error?.reason ?? "(none)"
      failed[reason] = (failed[reason] ?? 0) + 1
    }
    const byTime = (a: { readonly at: number }, b: { readonly at: number }) => a.at - b.at
    const [sync, async, calls] = yield* records(stack)
    const strangers = new Set(
      [...sync, ...async, ...calls].flatMap((record) =>
        record.jobId === null || jobs.has(record.jobId) ? [] : [record.jobId]
      )
    )
    const unnamed = expected.unnamed === undefined ? [] : yield* expected.unnamed([...strangers])
    const runStartedAt = new Map(expected.runStartedAt)
    for (const id of unnamed) runStartedAt.set(id, Infinity)
    const duplicateCalls = auditCalls(
      jobs,
      [...sync, ...async].filter((call) => call.jobId === null || !ofEarlierRun(runStartedAt, call.jobId, call.at))
    )
    const deadLetters = yield* auditDeadLetters(stack, jobs, runStartedAt)
    const notApplied = callbacksNotApplied(
      jobs,
      calls.filter((callback) => !ofEarlierRun(runStartedAt, callback.jobId, callback.at))
    )
    const outcome: Outcome = {
      accepted: ids.length,
      unnamed: unnamed.length,
      complete: all.filter((job) => job.status === "complete").length,
      failed,
      duplicates: changed.length,
      calls: sync.length + async.length,
      duplicateCalls,
      deadLetters,
      lost,
      unapplied: notApplied.length,
      jobs,
      sync: [...sync].sort(byTime),
      async: [...async].sort(byTime),
      callbacks: [...calls].sort(byTime)
    }
    assert.strictEqual(lost, 0, "lost jobs")
    assert.deepStrictEqual(
      all.filter((job) => !Number.isInteger(job.version)),
      [],
      "every finished job shows its version (ETag)"
    )
    assert.deepStrictEqual(
      changed.map((id) => [first.get(id), jobs.get(id)]),
      [],
      "jobs whose outcome changed after they finished"
    )
    assert.notProperty(failed, "(none)", "every failed job says why")
    assert.deepStrictEqual(
      notApplied.map((callback) => [callback, jobs.get(callback.jobId)]),
      [],
      "callbacks answered 2xx and not applied"
    )
    assert.strictEqual(ids.length, new Set(ids).size, "one job per request")
    return outcome
  })

/**
 * The callbacks our webhook answered 2xx that were not applied. A 2xx tells the vendor its answer is
 * stored, so each must have found its job waiting and completed it with its data (cleaned), or have
 * come after the job was complete already: a repeat, or a later call's answer, superseded by the
 * answer of another 2xx callback that the job holds.
 */
export const callbacksNotApplied = (
  jobs: ReadonlyMap<string, Client.JobView>,
  callbacks: ReadonlyArray<Client.Callback>
): ReadonlyArray<Client.Callback> => {
  const answered2xx = callbacks.filter(
    (callback) => callback.status !== null && callback.status >= 200 && callback.status < 300
  )
  const holds = (job: Client.JobView, callback: Client.Callback) =>
    callback.data !== undefined && isDeepStrictEqual(job.result, Cleaner.clean(callback.data))
  return answered2xx.filter((callback) => {
    const job = jobs.get(callback.jobId)
    if (job === undefined || job.status !== "complete") return true
    if (holds(job, callback)) return false
    const superseded =
      Date.parse(job.updated_at) <= callback.at &&
      answered2xx.some((other) => other.jobId === callback.jobId && holds(job, other))
    return !superseded
  })
}

/**
 * Asserts that no job was called (as the vendors recorded it) more often than its attempts: each
 * attempt makes at most one call, so a job called more often had two live attempts at once. The
 * calls are those of each job's current run (`attempts` counts a run's). Returns the calls beyond
 * attempts, summed over the jobs (0 when the assertion holds).
 */
export const auditCalls = (jobs: ReadonlyMap<string, Client.JobView>, arrived: ReadonlyArray<Client.Arrival>) => {
  const over = [...byJob(arrived)].flatMap(([id, calls]) => {
    const attempts = jobs.get(id)?.attempts ?? 0
    return calls.length > attempts ? [`${id}: ${calls.length} calls, ${attempts} attempts`] : []
  })
  assert.deepStrictEqual(over, [], "jobs called more often than their attempts")
  return over.length
}

/**
 * Asserts that the dead letters of the stack's vendors (those of each job's current run, see
 * `runStartedAt`) name failed jobs, each once, and that every failed job has its dead letter (so the
 * dead-letter views and counts miss none). Returns how many there are.
 */
export const auditDeadLetters = (
  stack: Stack.Stack,
  jobs: ReadonlyMap<string, Client.JobView>,
  runStartedAt: ReadonlyMap<string, number> = new Map()
) =>
  Effect.gen(function* () {
    const letters = (yield* Effect.forEach(stack.vendors, (vendor) =>
      Client.deadLetters(stack.redisUrl, stack.prefix, vendor)
    ))
      .flat()
      .filter((letter) => !ofEarlierRun(runStartedAt, letter.jobId, letter.at))
    const named = letters.map((letter) => letter.jobId)
    assert.deepStrictEqual(
      letters.filter((letter) => jobs.get(letter.jobId)?.status !== "failed"),
      [],
      "dead letters of jobs that did not fail"
    )
    assert.strictEqual(new Set(named).size, named.length, "each job dead-lettered once")
    const failed = [...jobs].filter(([, job]) => job.status === "failed").map(([id]) => id)
    assert.deepStrictEqual(
      failed.filter((id) => !named.includes(id)),
      [],
      "failed jobs without their dead letter"
    )
    return letters.length
  })

/** A job's arrivals at a vendor, oldest first, by job id. */
export const byJob = (arrived: ReadonlyArray<Client.Arrival>) => {
  const jobs = new Map<string, Array<Client.Arrival>>()
  for (const arrival of arrived) {
    if (arrival.jobId === null) continue
    jobs.set(arrival.jobId, [...(jobs.get(arrival.jobId) ?? []), arrival])
  }
  for (const list of jobs.values()) list.sort((a, b) => a.at - b.at)
  return jobs
}

/**
 * The gaps between a job's consecutive calls, grouped by retry number: `gaps[k - 1]` holds, for
 * every job called more than `k` times, how long after its k-th call the (k+1)-th came.
 */
export const gapsByRetry = (arrived: ReadonlyArray<Client.Arrival>) => {
  const gaps: Array<Array<number>> = []
  for (const calls of byJob(arrived).values()) {
    for (let k = 1; k < calls.length; k++) {
      const gap = (calls[k]?.at ?? 0) - (calls[k - 1]?.at ?? 0)
      ;(gaps[k - 1] ??= []).push(gap)
    }
  }
  return gaps
}

/** The mean of each retry's gaps, in ms. */
export const meanGaps = (gaps: ReadonlyArray<ReadonlyArray<number>>) =>
  gaps.map((list) => Math.round(list.reduce((sum, gap) => sum + gap, 0) / Math.max(1, list.length)))

/** Asserts the rate limit held at the vendor: no one-second window holds more than `limit` arrivals. */
export const assertLimitHeld = (arrived: ReadonlyArray<Client.Arrival>, limit: number) => {
  const worst = Client.worstWindow(arrived)
  assert.isAtMost(worst, limit, "the most arrivals in any one-second window")
  return worst
}

/** A count of failures by reason, as `Unavailable 10, RateLimited 2`, or `0`. */
export const failures = (failed: Readonly<Record<string, number>>) => {
  const entries = Object.entries(failed).sort()
  return entries.length === 0 ? "0" : entries.map(([reason, n]) => `${n} ${reason}`).join(", ")
}

/** The scenario's row in docs/reliability.md, logged so a run shows the figures it measured. */
export const report = (scenario: string, outcome: Outcome, notes: string) =>
  Effect.log(
    `| ${scenario} | ${outcome.accepted} | ${outcome.complete} | ${failures(outcome.failed)} | ` +
      `${outcome.duplicates} | ${outcome.lost} | ${outcome.calls} | ${outcome.duplicateCalls} | ` +
      `${outcome.deadLetters} | ${outcome.unapplied} | ${notes} |`
  )
