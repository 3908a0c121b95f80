/**
 * The conformance suite every {@link JobStore} implementation runs: the memory store in core's unit
 * tests, MongoDB in `@vendorflow/mongo`'s integration tests. Each test makes its own job ids, so one
 * store instance can serve the whole suite.
 *
 * @since 0.1.0
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import * as Job from "../Job.ts"
import { type Cursor, isAfter, JobStore, type ListQuery } from "../JobStore.ts"

const pending = (payload: Job.JsonObject = { query: "acme" }) =>
  Job.makePending({
    vendor: "sync",
    payload,
    traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    now: new Date()
  })

const startProcessing = (job: Job.Job) =>
  JobStore.use((store) =>
    store.transition({
      id: job.id,
      from: "pending",
      to: "processing",
      expectedVersion: job.version,
      set: { attempts: 1 }
    })
  ).pipe(Effect.map(Option.getOrThrow))

/**
 * Every page of a listing, checking what a client relies on: no page over `limit`, every page but
 * the last full, newest first across pages, no job twice. Returns the jobs in order.
 */
const pageThrough = (query: Omit<ListQuery, "after">) =>
  Effect.gen(function* () {
    const store = yield* JobStore
    const seen: Array<Job.JobSummary> = []
    let after: Cursor | undefined
    let pages = 0
    do {
      const page = yield* store.list({ ...query, after })
      pages++
      after = page.next
      if (after === undefined) assert.isAtMost(page.jobs.length, query.limit, `page ${pages} is over the limit`)
      else assert.strictEqual(page.jobs.length, query.limit, `page ${pages} is short but not the last`)
      seen.push(...page.jobs)
    } while (after !== undefined && pages <= 100_000 / query.limit)
    assert.isUndefined(after, "the pages came to an end")
    for (let i = 1; i < seen.length; i++) assert.isTrue(isAfter(seen[i]!, seen[i - 1]!), "newest first, no repeats")
    return seen
  })

// Jobs of one `group` (an owner or a vendor), one ms apart from `from` on, stored in batches.
const storeMany = (options: { readonly by: "owner" | "vendor"; readonly group: string; readonly vendor: string }) =>
  Effect.fnUntraced(function* (count: number, from: number) {
    const store = yield* JobStore
    const jobs = Array.from({ length: count }, (_, i) =>
      Job.makePending({
        vendor: options.by === "vendor" ? options.group : options.vendor,
        owner: options.by === "owner" ? options.group : undefined,
        payload: { i },
        now: new Date(from + i)
      })
    )
    for (let at = 0; at < jobs.length; at += 1_000) yield* store.createMany(jobs.slice(at, at + 1_000))
    return jobs.map((job) => job.id)
  })

/**
 * Registers the suite under `name`, against the store that `layer` builds.
 *
 * @category suites
 */
export const suite = <E>(name: string, layer: Layer.Layer<JobStore, E>): void => {
  describe(`JobStore conformance: ${name}`, () => {
    it.layer(layer, { timeout: 30_000, excludeTestServices: true })((it) => {
      it.effect("stores a job and reads it back unchanged", () =>
        Effect.gen(function* () {
          const store = yield* JobStore
          const job = pending()
          yield* store.create(job)
          assert.deepStrictEqual(yield* store.get(job.id), Option.some(job))
        })
      )

      it.effect("refuses a second job with the same id", () =>
        Effect.gen(function* () {
          const store = yield* JobStore
          const job = pending()
          yield* store.create(job)
          const error = yield* Effect.flip(store.create(job))
          assert.strictEqual(error.reason, "Duplicate")
        })
      )

      it.effect("stores a batch in one call: each job readable unchanged and listed under its status", () =>
        Effect.gen(function* () {
          const store = yield* JobStore
          const vendor = `batch-${crypto.randomUUID()}`
          const jobs = [
            ...["alice", undefined].map((owner) =>
              Job.makePending({ vendor, payload: { n: 1 }, owner, now: new Date() })
            ),
            // Not what `POST /jobs` makes, but a batch may mix statuses.
            new Job.Job({ ...Job.makePending({ vendor, payload: {}, now: new Date() }), status: "processing" })
          ]
          yield* store.createMany(jobs)
          for (const job of jobs) assert.deepStrictEqual(yield* store.get(job.id), Option.some(job))
          const listed = (status: Job.JobStatus) =>
            store.list({ status, vendor, limit: 10 }).pipe(Effect.map((page) => page.jobs.map((job) => job.id).sort()))
          assert.deepStrictEqual(yield* listed("pending"), [jobs[0]!.id, jobs[1]!.id].sort())
          assert.deepStrictEqual(yield* listed("processing"), [jobs[2]!.id])
          yield* store.createMany([])
        })
      )

      it.effect("a batch with ids that exist fails with Duplicate naming them, and stores the others", () =>
        Effect.gen(function* () {
          const store = yield* JobStore
          const existing = pending()
          yield* store.create(existing)
          const clash = Job.makePending({ id: existing.id, vendor: "other", payload: { clash: true }, now: new Date() })
          const fresh = [pending(), pending()]
          const error = yield* Effect.flip(store.createMany([fresh[0]!, clash, fresh[1]!, fresh[0]!]))
          assert.strictEqual(error.reason, "Duplicate")
          assert.include(error.message, existing.id)
          assert.deepStrictEqual(yield* store.get(existing.id), Option.some(existing), "not overwritten")
          for (const job of fresh) assert.deepStrictEqual(yield* store.get(job.id), Option.some(job))
        })
      )

      it.effect("reads several jobs in one call without payloads, each in its id's place, None where missing", () =>
        Effect.gen(function* () {
          const store = yield* JobStore
          const [a, b] = [pending(), pending({ query: "globex" })]
          yield* store.createMany([a, b])
          // The current record, not the one created.
          const started = yield* startProcessing(b)
          const ids = [a.id, Job.makeJobId(), b.id, a.id]
          const many = yield* store.getMany(ids)
          const [summaryA, summaryB] = [Job.summaryOf(a), Job.summaryOf(started)]
          assert.deepStrictEqual(many, [
            Option.some(summaryA),
            Option.none(),
            Option.some(summaryB),
            Option.some(summaryA)
          ])
          assert.deepStrictEqual(
            many,
            yield* Effect.forEach(ids, (id) => Effect.map(store.get(id), Option.map(Job.summaryOf)))
          )
          assert.deepStrictEqual(yield* store.getMany([b.id]), [Option.some(summaryB)])
          assert.deepStrictEqual(yield* store.getMany([]), [])
        })
      )

      it.effect("answers None for an unknown id", () =>
        Effect.gen(function* () {
          const store = yield* JobStore
          assert.isTrue(Option.isNone(yield* store.get(Job.makeJobId())))
        })
      )

      it.effect("applies an allowed transition: new status, fields, version + 1", () =>
        Effect.gen(function* () {
          const store = yield* JobStore
          const job = pending()
          yield* store.create(job)
          const started = yield* startProcessing(job)
          assert.strictEqual(started.status, "processing")
          assert.strictEqual(started.attempts, 1)
          assert.strictEqual(started.version, job.version + 1)
          assert.strictEqual(started.createdAt, job.createdAt)
          assert.isTrue(Date.parse(started.updatedAt) >= Date.parse(job.updatedAt))
          assert.deepStrictEqual(yield* store.get(job.id), Option.some(started))
        })
      )

      it.effect("compare-and-set: a stale status or version changes nothing", () =>
        Effect.gen(function* () {
          const store = yield* JobStore
          const job = pending()
          yield* store.create(job)
          const started = yield* startProcessing(job)
          const wrongStatus = yield* store.transition({ id: job.id, from: "pending", to: "processing" })
          const wrongVersion = yield* store.transition({
            id: job.id,
            from: "processing",
            to: "complete",
            expectedVersion: job.version,
            set: { result: "late" }
          })
          assert.isTrue(Option.isNone(wrongStatus))
          assert.isTrue(Option.isNone(wrongVersion))
          assert.deepStrictEqual(yield* store.get(job.id), Option.some(started))
        })
      )

      it.effect("of concurrent identical transitions exactly one wins", () =>
        Effect.gen(function* () {
          const store = yield* JobStore
          const job = pending()
          yield* store.create(job)
          const started = yield* startProcessing(job)
          const outcomes = yield* Effect.all(
            Array.from({ length: 10 }, (_, i) =>
              store.transition({
                id: job.id,
                from: "processing",
                to: "complete",
                expectedVersion: started.version,
                set: { result: i }
              })
            ),
            { concurrency: "unbounded" }
          )
          assert.strictEqual(outcomes.filter(Option.isSome).length, 1)
        })
      )

      it.effect("keeps a job's run through its changes, and a new run from an operator's retry", () =>
        Effect.gen(function* () {
          const store = yield* JobStore
          const job = pending()
          yield* store.create(job)
          assert.strictEqual(job.run, 1)
          const started = yield* startProcessing(job)
          assert.strictEqual(started.run, 1)
          const failed = yield* store.transition({
            id: job.id,
            from: "processing",
            to: "failed",
            set: { error: { reason: "Rejected", message: "no" } }
          })
          assert.strictEqual(Option.getOrThrow(failed).run, 1)
          const retried = yield* store.transition({
            id: job.id,
            from: "failed",
            to: "pending",
            set: { attempts: 0, run: 2 },
            unset: ["error"]
          })
          assert.deepInclude(Option.getOrThrow(retried), { run: 2, attempts: 0 })
          assert.deepStrictEqual(yield* store.get(job.id), retried)
        })
      )

      it.effect("completes a pending job (a callback that arrives while it waits to be sent again)", () =>
        Effect.gen(function* () {
          const store = yield* JobStore
          const job = pending()
          yield* store.create(job)
          const completed = yield* store.transition({
            id: job.id,
            from: "pending",
            to: "complete",
            expectedVersion: job.version,
            set: { result: { ok: true } }
          })
          assert.deepInclude(Option.getOrThrow(completed), { status: "complete", result: { ok: true } })
          assert.deepStrictEqual(yield* store.get(job.id), completed)
          const listed = yield* store.list({ status: "complete", vendor: job.vendor, limit: 500 })
          assert.isTrue(listed.jobs.some((listedJob) => listedJob.id === job.id))
        })
      )

      it.effect("claim: a pending job of the vendor with attempts left, counted, leased, in one step", () =>
        Effect.gen(function* () {
          const store = yield* JobStore
          const tag = crypto.randomUUID().slice(0, 8)
          const waiting = Job.makePending({
            vendor: `claim-${tag}`,
            owner: `owner-${tag}`,
            payload: { query: "acme" },
            now: new Date()
          })
          yield* store.create(waiting)
          // A job waiting for a retry, with one attempt spent.
          const started = yield* startProcessing(waiting)
          const retryAt = new Date(Date.parse(waiting.createdAt) + 1000).toISOString()
          const parked = yield* store
            .transition({
              id: waiting.id,
              from: "processing",
              to: "pending",
              expectedVersion: started.version,
              set: { nextRetryAt: retryAt, overdueAt: retryAt, error: { reason: "Unavailable", message: "503" } }
            })
            .pipe(Effect.map(Option.getOrThrow))
          const overdueAt = new Date(Date.parse(waiting.createdAt) + 30_000).toISOString()
          const claim = { id: waiting.id, vendor: waiting.vendor, maxAttempts: 5, overdueAt }
          const claimed = Option.getOrThrow(yield* store.claim(claim))
          assert.strictEqual(claimed.waitingSince, parked.updatedAt)
          assert.deepInclude(claimed.job, {
            status: "processing",
            attempts: 2,
            version: parked.version + 1,
            overdueAt,
            payload: waiting.payload,
            error: { reason: "Unavailable", message: "503" }
          })
          assert.isUndefined(claimed.job.nextRetryAt)
          assert.deepStrictEqual(yield* store.get(waiting.id), Option.some(claimed.job))
          // Moved from pending's listings to processing's, by vendor, by owner and by both.
          const listedIds = (query: Omit<ListQuery, "limit">) =>
            Effect.map(store.list({ ...query, limit: 500 }), (page) => page.jobs.map((job) => job.id))
          for (const filter of [
            { vendor: waiting.vendor },
            { owner: waiting.owner },
            { vendor: waiting.vendor, owner: waiting.owner }
          ]) {
            assert.deepStrictEqual(yield* listedIds({ status: "processing", ...filter }), [waiting.id])
            assert.deepStrictEqual(yield* listedIds({ status: "pending", ...filter }), [])
          }
          const overdue = yield* store.listOverdue({ before: new Date(Date.parse(overdueAt) + 1), limit: 10_000 })
          assert.isTrue(overdue.some((job) => job.id === waiting.id && job.overdueAt === overdueAt))
          // Claimed already: a second claim does not apply.
          assert.isTrue(Option.isNone(yield* store.claim(claim)))
        })
      )

      it.effect("claim: does not apply (writes nothing) to another vendor's job, one out of attempts, or none", () =>
        Effect.gen(function* () {
          const store = yield* JobStore
          const job = pending()
          yield* store.create(job)
          const claim = { id: job.id, vendor: job.vendor, maxAttempts: 1, overdueAt: job.createdAt }
          assert.isTrue(Option.isNone(yield* store.claim({ ...claim, vendor: "other" })))
          assert.isTrue(Option.isNone(yield* store.claim({ ...claim, maxAttempts: 0 })))
          assert.isTrue(Option.isNone(yield* store.claim({ ...claim, id: Job.makeJobId() })))
          assert.deepStrictEqual(yield* store.get(job.id), Option.some(job))
          const finished = pending()
          yield* store.create(finished)
          yield* store.transition({ id: finished.id, from: "pending", to: "failed" })
          assert.isTrue(Option.isNone(yield* store.claim({ ...claim, id: finished.id })))
          // Under the limit, it applies.
          assert.strictEqual(Option.getOrThrow(yield* store.claim(claim)).job.attempts, 1)
        })
      )

      it.effect("claim: of concurrent claims of one job exactly one wins; claims of several each keep theirs", () =>
        Effect.gen(function* () {
          const store = yield* JobStore
          const [contested, other, missing] = [pending(), pending(), pending()]
          yield* store.createMany([contested, other])
          const claimOf = (job: Job.Job) => ({
            id: job.id,
            vendor: job.vendor,
            maxAttempts: 5,
            overdueAt: job.createdAt
          })
          const outcomes = yield* Effect.all(
            [...Array.from({ length: 10 }, () => contested), other, missing].map((job) => store.claim(claimOf(job))),
            { concurrency: "unbounded" }
          )
          assert.strictEqual(outcomes.slice(0, 10).filter(Option.isSome).length, 1)
          assert.strictEqual(Option.getOrThrow(outcomes[10]!).job.id, other.id)
          assert.isTrue(Option.isNone(outcomes[11]!))
          assert.strictEqual(Option.getOrThrow(yield* store.get(contested.id)).attempts, 1)
        })
      )

      it.effect("refuses a transition the job model forbids", () =>
        Effect.gen(function* () {
          const store = yield* JobStore
          const job = pending()
          yield* store.create(job)
          const error = yield* Effect.flip(store.transition({ id: job.id, from: "failed", to: "complete" }))
          assert.strictEqual(error.reason, "InvalidTransition")
          const finished = yield* Effect.flip(store.transition({ id: job.id, from: "complete", to: "complete" }))
          assert.strictEqual(finished.reason, "InvalidTransition")
        })
      )

      it.effect("updates an unfinished job in place and removes fields on request", () =>
        Effect.gen(function* () {
          const store = yield* JobStore
          const job = pending()
          yield* store.create(job)
          const started = yield* startProcessing(job)
          const awaiting = yield* store
            .transition({
              id: job.id,
              from: "processing",
              to: "processing",
              set: { awaitingCallback: true }
            })
            .pipe(Effect.map(Option.getOrThrow))
          assert.strictEqual(awaiting.awaitingCallback, true)
          assert.strictEqual(awaiting.version, started.version + 1)
          const done = yield* store
            .transition({
              id: job.id,
              from: "processing",
              to: "complete",
              set: { result: null },
              unset: ["awaitingCallback"]
            })
            .pipe(Effect.map(Option.getOrThrow))
          assert.isFalse("awaitingCallback" in done)
          assert.strictEqual(done.result, null)
          assert.deepStrictEqual(yield* store.get(job.id), Option.some(done))
        })
      )

      it.effect("lists unfinished jobs overdue before a time, most overdue first, up to a limit", () =>
        Effect.gen(function* () {
          const store = yield* JobStore
          const vendor = `overdue-${crypto.randomUUID()}`
          // Overdue 10 minutes after these times (`Job.defaultPendingAfter`), in 1997 (before every other job of this suite, so none of theirs comes first).
          const make = (at: string) => Job.makePending({ vendor, payload: {}, now: new Date(at) })
          const [late, later, latest] = [
            make("1997-01-01T00:00:02.000Z"),
            make("1997-01-01T00:00:01.000Z"),
            make("1997-01-01T00:00:03.000Z")
          ]
          yield* store.createMany([late!, later!, latest!])
          const before = new Date("1997-01-01T00:10:02.500Z")
          const ours = (jobs: ReadonlyArray<Job.Job>) => jobs.filter((job) => job.vendor === vendor).map((j) => j.id)
          assert.deepStrictEqual(ours(yield* store.listOverdue({ before, limit: 100 })), [later!.id, late!.id])
          assert.deepStrictEqual(ours(yield* store.listOverdue({ before, limit: 1 })), [later!.id])
          assert.deepStrictEqual(yield* store.listOverdue({ before, limit: 0 }), [])
          // Moved on (overdue later) or finished: no longer listed.
          yield* store.transition({
            id: later!.id,
            from: "pending",
            to: "processing",
            set: { attempts: 1, overdueAt: "1997-01-01T01:00:00.000Z" }
          })
          const failed = yield* store
            .transition({ id: late!.id, from: "pending", to: "failed" })
            .pipe(Effect.map(Option.getOrThrow))
          assert.isFalse("overdueAt" in failed, "a finished job is never overdue")
          assert.deepStrictEqual(ours(yield* store.listOverdue({ before, limit: 100 })), [])
          const afterwards = new Date("1997-01-01T02:00:00.000Z")
          assert.deepStrictEqual(ours(yield* store.listOverdue({ before: afterwards, limit: 100 })), [
            latest!.id,
            later!.id
          ])
          // An operator's retry makes the failed job overdue again when it says so.
          yield* store.transition({
            id: late!.id,
            from: "failed",
            to: "pending",
            set: { overdueAt: "1997-01-01T00:00:00.000Z" }
          })
          assert.deepStrictEqual(ours(yield* store.listOverdue({ before: afterwards, limit: 1 })), [late!.id])
        })
      )

      it.effect("a job overdue behind many that are not is listed first (the sweep cannot starve)", () =>
        Effect.gen(function* () {
          const store = yield* JobStore
          const vendor = `starve-${crypto.randomUUID()}`
          // Many jobs in flight in 1998, each under a lease that runs until well after `before`.
          const held = Array.from({ length: 600 }, () =>
            Job.makePending({ vendor, payload: {}, now: new Date("1998-01-01T00:00:00.000Z") })
          )
          yield* store.createMany(held)
          yield* Effect.forEach(
            held,
            (job) =>
              store.transition({
                id: job.id,
                from: "pending",
                to: "processing",
                set: { attempts: 1, overdueAt: "1998-01-02T00:00:00.000Z" }
              }),
            { concurrency: 50, discard: true }
          )
          const stuck = Job.makePending({ vendor, payload: {}, now: new Date("1998-01-01T00:00:01.000Z") })
          yield* store.create(stuck)
          const listed = yield* store.listOverdue({ before: new Date("1998-01-01T12:00:00.000Z"), limit: 10 })
          assert.deepStrictEqual(
            listed.filter((job) => job.vendor === vendor).map((job) => job.id),
            [stuck.id]
          )
        })
      )

      it.effect("sets, keeps and removes overdueAt through transitions", () =>
        Effect.gen(function* () {
          const store = yield* JobStore
          const job = pending()
          yield* store.create(job)
          assert.strictEqual(job.overdueAt, Job.pendingOverdueAt(Date.parse(job.createdAt)))
          const leased = yield* store
            .transition({
              id: job.id,
              from: "pending",
              to: "processing",
              set: { attempts: 1, overdueAt: "2100-01-01T00:00:00.000Z" }
            })
            .pipe(Effect.map(Option.getOrThrow))
          assert.strictEqual(leased.overdueAt, "2100-01-01T00:00:00.000Z")
          const kept = yield* store
            .transition({ id: job.id, from: "processing", to: "processing", set: { awaitingCallback: true } })
            .pipe(Effect.map(Option.getOrThrow))
          assert.strictEqual(kept.overdueAt, "2100-01-01T00:00:00.000Z")
          const removed = yield* store
            .transition({ id: job.id, from: "processing", to: "processing", unset: ["overdueAt"] })
            .pipe(Effect.map(Option.getOrThrow))
          assert.isFalse("overdueAt" in removed)
          assert.deepStrictEqual(yield* store.get(job.id), Option.some(removed))
        })
      )

      it.effect("lists a status page by page, newest first, by vendor, never skipping or repeating a job", () =>
        Effect.gen(function* () {
          const store = yield* JobStore
          const vendor = `list-${crypto.randomUUID()}`
          const created = yield* Effect.forEach(Array.from({ length: 7 }), () =>
            Effect.gen(function* () {
              const job = Job.makePending({ vendor, payload: {}, now: new Date() })
              yield* store.create(job)
              yield* store.transition({
                id: job.id,
                from: "pending",
                to: "failed",
                set: { error: { reason: "Rejected", message: "no" } }
              })
              return job.id
            })
          )
          const other = Job.makePending({ vendor: `${vendor}-other`, payload: {}, now: new Date() })
          yield* store.create(other)
          yield* store.transition({ id: other.id, from: "pending", to: "failed" })
          const seen = yield* pageThrough({ status: "failed", vendor, limit: 3 })
          assert.deepStrictEqual(new Set(seen.map((job) => job.id)), new Set(created))
          assert.strictEqual(seen.length, created.length, "no job twice")
          const pending = yield* store.list({ status: "pending", vendor, limit: 10 })
          assert.deepStrictEqual(pending.jobs, [])
        })
      )

      it.effect("lists jobs as getMany reads them: without their payloads", () =>
        Effect.gen(function* () {
          const store = yield* JobStore
          const vendor = `summary-${crypto.randomUUID()}`
          const job = Job.makePending({
            vendor,
            payload: { large: "x".repeat(1_000) },
            owner: "alice",
            now: new Date()
          })
          yield* store.create(job)
          const page = yield* store.list({ status: "pending", vendor, owner: "alice", limit: 10 })
          assert.deepStrictEqual(page.jobs, [Job.summaryOf(job)])
          assert.isFalse("payload" in page.jobs[0]!)
        })
      )

      // With API keys on, every listing is one owner's: an owner's jobs behind (or ahead of)
      // thousands of another owner's must page exactly, with no page falsely the last.
      for (const by of ["owner", "vendor"] as const) {
        for (const oneFirst of [true, false]) {
          const order = oneFirst
            ? `one job of one ${by}, then 5,000 of another`
            : `5,000 jobs of one ${by}, then one of another`
          it.effect(`pages through exactly each ${by}'s own jobs: ${order}`, () =>
            Effect.gen(function* () {
              const tag = crypto.randomUUID()
              const vendor = `mix-${tag}`
              const [one, many] = [`one-${tag}`, `many-${tag}`]
              const from = Date.now() - 3_600_000
              const ofOne = storeMany({ by, group: one, vendor })
              const ofMany = storeMany({ by, group: many, vendor })
              const [oneIds, manyIds] = oneFirst
                ? [yield* ofOne(1, from), yield* ofMany(5_000, from + 1)]
                : [yield* ofOne(1, from + 5_000), yield* ofMany(5_000, from)]
              const listed = (group: string, limit: number) =>
                pageThrough(
                  by === "owner"
                    ? { status: "pending", owner: group, limit }
                    : { status: "pending", vendor: group, limit }
                ).pipe(Effect.map((jobs) => jobs.map((job) => job.id)))
              assert.deepStrictEqual(yield* listed(one, 50), oneIds)
              assert.deepStrictEqual(yield* listed(many, 500), [...manyIds].reverse())
              assert.deepStrictEqual(yield* listed(many, 50).pipe(Effect.map((ids) => ids.length)), 5_000)
              if (by === "owner") {
                // An owner's jobs of one vendor: what a key's list with `?vendor=` asks.
                const both = yield* pageThrough({ status: "pending", owner: one, vendor, limit: 50 })
                assert.deepStrictEqual(
                  both.map((job) => job.id),
                  oneIds
                )
              } else {
                // Unfiltered (API keys off), the status's jobs of every test so far: ours among them, in order.
                const ours = new Set([...oneIds, ...manyIds])
                const all = yield* pageThrough({ status: "pending", limit: 500 })
                const listedOurs = all.filter((job) => ours.has(job.id)).map((job) => job.id)
                assert.deepStrictEqual(
                  listedOurs,
                  oneFirst ? [...manyIds].reverse().concat(oneIds) : [...oneIds, ...[...manyIds].reverse()]
                )
              }
            })
          )
        }
      }

      it.effect("keeps a job's owner, and lists only that owner's jobs when asked", () =>
        Effect.gen(function* () {
          const store = yield* JobStore
          const vendor = `owners-${crypto.randomUUID()}`
          const [alice, bob, nobody] = ["alice", "bob", undefined].map((owner) =>
            Job.makePending({
              vendor,
              payload: {},
              owner,
              traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
              now: new Date()
            })
          )
          yield* Effect.forEach([alice!, bob!, nobody!], (job) => store.create(job), { discard: true })
          assert.strictEqual((yield* store.get(alice!.id)).pipe(Option.getOrThrow).owner, "alice")
          const listed = (owner: string | undefined) =>
            store
              .list({ status: "pending", vendor, owner, limit: 10 })
              .pipe(Effect.map((page) => page.jobs.map((job) => job.id).sort()))
          assert.deepStrictEqual(yield* listed("alice"), [alice!.id])
          assert.deepStrictEqual(yield* listed("bob"), [bob!.id])
          assert.deepStrictEqual(yield* listed(undefined), [alice!.id, bob!.id, nobody!.id].sort())
          // A transition keeps what the job was made with.
          yield* store.transition({
            id: alice!.id,
            from: "pending",
            to: "failed",
            set: { error: { reason: "x", message: "y" } }
          })
          const failed = (yield* store.get(alice!.id)).pipe(Option.getOrThrow)
          assert.deepStrictEqual([failed.owner, failed.traceparent], ["alice", alice!.traceparent])
        })
      )

      it.effect("keeps payload keys that start with $ or contain a dot", () =>
        Effect.gen(function* () {
          const store = yield* JobStore
          const job = pending({ $where: "1", "a.b": { $gt: "", "c.d": [1, { $ne: null }] }, plain: "x" })
          yield* store.create(job)
          const stored = yield* store.get(job.id).pipe(Effect.map(Option.getOrThrow))
          assert.deepStrictEqual(stored.payload, job.payload)
        })
      )
    })
  })
}
