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
import { type Cursor, isAfter, JobStore } from "../JobStore.ts"

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

      it.effect("reads several jobs in one call, each in its id's place as get answers it, None where missing", () =>
        Effect.gen(function* () {
          const store = yield* JobStore
          const [a, b] = [pending(), pending({ query: "globex" })]
          yield* store.createMany([a, b])
          // The current record, not the one created.
          const started = yield* startProcessing(b)
          const ids = [a.id, Job.makeJobId(), b.id, a.id]
          const many = yield* store.getMany(ids)
          assert.deepStrictEqual(many, [Option.some(a), Option.none(), Option.some(started), Option.some(a)])
          assert.deepStrictEqual(many, yield* Effect.forEach(ids, (id) => store.get(id)))
          assert.deepStrictEqual(yield* store.getMany([b.id]), [Option.some(started)])
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

      it.effect("lists jobs left in a status since before a time, oldest first, up to a limit", () =>
        Effect.gen(function* () {
          const store = yield* JobStore
          const vendor = `stale-${crypto.randomUUID()}`
          const make = (at: string) => Job.makePending({ vendor, payload: {}, now: new Date(at) })
          const old = [
            make("2001-01-01T00:00:01.000Z"),
            make("2001-01-01T00:00:02.000Z"),
            make("2001-01-01T00:00:03.000Z")
          ]
          for (const job of old) yield* store.create(job)
          const cutoff = new Date("2001-01-01T00:00:02.500Z")
          const listed = yield* store.listStale({ status: "pending", updatedBefore: cutoff, limit: 100 })
          const ours = listed.filter((job) => job.vendor === vendor)
          assert.deepStrictEqual(
            ours.map((job) => job.id),
            [old[0]!.id, old[1]!.id]
          )
          const limited = yield* store.listStale({ status: "pending", updatedBefore: cutoff, limit: 1 })
          assert.strictEqual(limited.length, 1)
          const none = yield* store.listStale({ status: "processing", updatedBefore: cutoff, limit: 100 })
          assert.isFalse(none.some((job) => job.vendor === vendor))
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
          const seen: Array<Job.Job> = []
          let after: Cursor | undefined
          for (let page = 0; page < 10; page++) {
            const result = yield* store.list({ status: "failed", vendor, limit: 3, after })
            assert.isAtMost(result.jobs.length, 3)
            seen.push(...result.jobs)
            after = result.next
            if (after === undefined) break
          }
          assert.deepStrictEqual(new Set(seen.map((job) => job.id)), new Set(created))
          assert.strictEqual(seen.length, created.length, "no job twice")
          for (let i = 1; i < seen.length; i++) assert.isTrue(isAfter(seen[i]!, seen[i - 1]!), "newest first")
          const pending = yield* store.list({ status: "pending", vendor, limit: 10 })
          assert.deepStrictEqual(pending.jobs, [])
        })
      )

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
