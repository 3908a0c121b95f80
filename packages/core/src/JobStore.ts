/**
 * The job store: job records and their state transitions.
 *
 * Every change is a compare-and-set on the current status (and, when given, the version), never a
 * blind overwrite, so a duplicate delivery or a repeated webhook can't undo newer work.
 * Offers {@link layerMemory}; `@vendorflow/mongo` offers the MongoDB implementation.
 *
 * @since 0.1.0
 */
import { Clock, Context, Effect, Layer, Option, Schema } from "effect"
import * as Job from "./Job.ts"

/**
 * A store failure. `Unavailable` (the store could not be reached or did not answer in time) is
 * worth retrying. `Rejected` is not: the store answered and refused, and would refuse the same
 * operation again (a document too large for it, a validator, missing privileges, a record it
 * cannot read); the engine fails the job rather than run it again. `Duplicate` (an id that exists)
 * and `InvalidTransition` (a change {@link Job.transitions} forbids) are bugs of the caller.
 *
 * @category errors
 */
export class JobStoreError extends Schema.TaggedError<JobStoreError>()("JobStoreError", {
  reason: Schema.Literals(["Unavailable", "Rejected", "Duplicate", "InvalidTransition"]),
  message: Schema.String
}) {
  get isRetryable(): boolean {
    return this.reason === "Unavailable"
  }
}

/**
 * The error for new jobs whose ids exist, naming them.
 *
 * @category errors
 */
export const duplicate = (ids: ReadonlyArray<Job.JobId>): JobStoreError =>
  new JobStoreError({
    reason: "Duplicate",
    message: ids.length === 1 ? `job ${ids[0]} exists` : `jobs ${ids.join(", ")} exist`
  })

/**
 * Fields a transition may set alongside the status.
 *
 * @category models
 */
export interface Patch {
  readonly attempts?: number
  readonly run?: number
  readonly result?: Schema.Json
  readonly error?: Job.JobFailure
  readonly awaitingCallback?: boolean
  readonly nextRetryAt?: string
  readonly overdueAt?: string
}

/**
 * The fields of a job that a transition may remove.
 *
 * @category models
 */
export type OptionalField = "result" | "error" | "awaitingCallback" | "nextRetryAt" | "overdueAt"

/**
 * A compare-and-set change: applied only while the job is `from` (and at `expectedVersion`, if given).
 * `from === to` updates the fields of an unfinished job without moving it.
 *
 * @category models
 */
export interface Transition {
  readonly id: Job.JobId
  readonly from: Job.JobStatus
  readonly to: Job.JobStatus
  readonly expectedVersion?: number | undefined
  readonly set?: Patch | undefined
  /** Fields to remove, e.g. the old error when a failed job is sent round again. */
  readonly unset?: ReadonlyArray<OptionalField> | undefined
}

/**
 * What {@link JobStore} `claim` asks for: the pending job `id` of `vendor`, if it has had fewer than
 * `maxAttempts` attempts, for a new attempt leased until `overdueAt`.
 *
 * @category models
 */
export interface Claim {
  readonly id: Job.JobId
  readonly vendor: string
  readonly maxAttempts: number
  readonly overdueAt: string
}

/**
 * A job {@link JobStore} `claim` claimed, and its `updatedAt` from before the claim (so the caller
 * knows how long it waited).
 *
 * @category models
 */
export interface Claimed {
  readonly job: Job.Job
  readonly waitingSince: string
}

/**
 * The transition a claim makes of `job` as it is now, or `undefined` when the claim does not apply
 * to it: pending to processing at its version, one more attempt, leased until the claim's
 * `overdueAt`, no longer waiting for a retry.
 *
 * @category transitions
 */
export const claimTransition = (job: Job.JobSummary, claim: Claim): Transition | undefined =>
  job.status === "pending" && job.vendor === claim.vendor && job.attempts < claim.maxAttempts
    ? {
        id: job.id,
        from: "pending",
        to: "processing",
        expectedVersion: job.version,
        set: { attempts: job.attempts + 1, overdueAt: claim.overdueAt },
        unset: ["nextRetryAt"]
      }
    : undefined

/**
 * A `claim` made from a store's `get` and `transition`: a read, then the compare-and-set at the
 * version read (`None` when a write came in between, as when the claim does not apply). For a store
 * whose read costs no more than the engine's first look at a job would.
 *
 * @category transitions
 */
export const claimVia =
  <E>(store: {
    readonly get: (id: Job.JobId) => Effect.Effect<Option.Option<Job.Job>, E>
    readonly transition: (transition: Transition) => Effect.Effect<Option.Option<Job.Job>, E>
  }) =>
  (claim: Claim): Effect.Effect<Option.Option<Claimed>, E> =>
    Effect.flatMap(store.get(claim.id), (found) => {
      const change = Option.isSome(found) ? claimTransition(found.value, claim) : undefined
      if (Option.isNone(found) || change === undefined) return Effect.succeedNone
      const waitingSince = found.value.updatedAt
      return Effect.map(
        store.transition(change),
        Option.map((job) => ({ job, waitingSince }))
      )
    })

/**
 * Whether a transition is allowed by {@link Job.transitions}, or is a same-status update of an
 * unfinished job.
 *
 * @category transitions
 */
export const isAllowed = (transition: Pick<Transition, "from" | "to">): boolean =>
  transition.from === transition.to
    ? !Job.isFinished(transition.from)
    : Job.canTransition(transition.from, transition.to)

/**
 * The error for a transition that {@link isAllowed} refuses.
 *
 * @category errors
 */
export const invalidTransition = (transition: Pick<Transition, "from" | "to">): JobStoreError =>
  new JobStoreError({
    reason: "InvalidTransition",
    message: `a job may not go from ${transition.from} to ${transition.to}`
  })

/**
 * The fields a transition removes: those it names, and `overdueAt` when it finishes the job (a
 * finished job is never overdue), so no store's overdue index keeps a finished job.
 *
 * @category transitions
 */
export const unsetFields = (transition: Pick<Transition, "to" | "unset">): ReadonlySet<OptionalField> =>
  Job.isFinished(transition.to) ? new Set([...(transition.unset ?? []), "overdueAt"]) : new Set(transition.unset ?? [])

/**
 * Applies a transition to a job, or returns `undefined` when the job is not in the expected state.
 * Shared by the stores that compute the new record in memory.
 *
 * @category transitions
 */
export const applyTransition = (job: Job.Job, transition: Transition, now: Date): Job.Job | undefined => {
  if (job.status !== transition.from) return undefined
  if (transition.expectedVersion !== undefined && job.version !== transition.expectedVersion) return undefined
  const set = transition.set ?? {}
  const unset = unsetFields(transition)
  const field = <K extends OptionalField>(key: K): Partial<Pick<Job.Job, K>> => {
    if (unset.has(key)) return {}
    if (key in set) return { [key]: set[key] } as Partial<Pick<Job.Job, K>>
    return key in job ? ({ [key]: job[key] } as Partial<Pick<Job.Job, K>>) : {}
  }
  return new Job.Job({
    id: job.id,
    vendor: job.vendor,
    payload: job.payload,
    createdAt: job.createdAt,
    ...(job.owner === undefined ? {} : { owner: job.owner }),
    ...(job.traceparent === undefined ? {} : { traceparent: job.traceparent }),
    status: transition.to,
    attempts: set.attempts ?? job.attempts,
    run: set.run ?? job.run,
    version: job.version + 1,
    updatedAt: now.toISOString(),
    ...field("result"),
    ...field("error"),
    ...field("awaitingCallback"),
    ...field("nextRetryAt"),
    ...field("overdueAt")
  })
}

/**
 * The job store service.
 *
 * @category services
 */
export class JobStore extends Context.Service<
  JobStore,
  {
    /** Stores a new job; fails with `Duplicate` if its id exists. */
    readonly create: (job: Job.Job) => Effect.Effect<void, JobStoreError>
    /**
     * Stores new jobs whose ids are fresh (submissions without an idempotency key), in one round trip
     * where the store can. Fails with `Duplicate` if one of the ids exists (the others are stored).
     */
    readonly createMany: (jobs: ReadonlyArray<Job.Job>) => Effect.Effect<void, JobStoreError>
    readonly get: (id: Job.JobId) => Effect.Effect<Option.Option<Job.Job>, JobStoreError>
    /**
     * Several jobs at once without their payloads, each in its id's place (`None` where there is
     * none), in one round trip where the store can: the reads of the API and the engine's first
     * look at a delivery, none of which needs the payload.
     */
    readonly getMany: (
      ids: ReadonlyArray<Job.JobId>
    ) => Effect.Effect<ReadonlyArray<Option.Option<Job.JobSummary>>, JobStoreError>
    /** The updated job, or `None` when the job was missing or not in the expected state. */
    readonly transition: (transition: Transition) => Effect.Effect<Option.Option<Job.Job>, JobStoreError>
    /**
     * Claims a pending job for a new attempt without the caller reading it first: the engine's
     * claim (see {@link claimTransition}), applied only while the job is pending, of the claim's
     * vendor, with fewer than `maxAttempts` attempts. Answers the claimed job and when it last
     * changed before; `None`, with nothing written, when there is no such job or the claim does
     * not apply (the engine then reads the job and decides what its delivery does).
     */
    readonly claim: (claim: Claim) => Effect.Effect<Option.Option<Claimed>, JobStoreError>
    /**
     * Up to `limit` unfinished jobs whose `overdueAt` is before `before`, most overdue first: what the
     * sweeper moves on. Served by an index on `overdueAt`, so jobs that are not overdue (a deep
     * backlog, async jobs inside their callback deadline) cost nothing and never hide one that is.
     */
    readonly listOverdue: (query: OverdueQuery) => Effect.Effect<ReadonlyArray<Job.Job>, JobStoreError>
    /**
     * A page of jobs in `status` (of one vendor, of one owner, if given), most recently changed
     * first, without their payloads.
     */
    readonly list: (query: ListQuery) => Effect.Effect<Page, JobStoreError>
  }
>()("@vendorflow/core/JobStore") {}

/**
 * Where a page of {@link JobStore} `list` ends: the last job's `updatedAt` and id (ties in time are
 * ordered by id, so a page boundary never skips or repeats a job).
 *
 * @category models
 */
export interface Cursor {
  readonly updatedAt: string
  readonly id: Job.JobId
}

/**
 * What {@link JobStore} `list` looks for.
 *
 * @category models
 */
export interface ListQuery {
  readonly status: Job.JobStatus
  readonly vendor?: string | undefined
  /** Only the jobs of this API key (`Job.owner`). */
  readonly owner?: string | undefined
  readonly limit: number
  /** Continue after this cursor (the previous page's `next`). */
  readonly after?: Cursor | undefined
}

/**
 * Whether `job` belongs on a {@link JobStore} `list` page for `query`, the cursor aside from order.
 *
 * @category listing
 */
export const isListed = (job: Job.JobSummary, query: ListQuery): boolean =>
  job.status === query.status &&
  (query.vendor === undefined || job.vendor === query.vendor) &&
  (query.owner === undefined || job.owner === query.owner) &&
  (query.after === undefined || isAfter(job, query.after))

/**
 * A page of jobs, and where the next one starts (absent on the last page).
 *
 * @category models
 */
export interface Page {
  readonly jobs: ReadonlyArray<Job.JobSummary>
  readonly next?: Cursor | undefined
}

/**
 * Whether `job` comes after `cursor` in `list`'s order (newest first, then id descending).
 *
 * @category listing
 */
export const isAfter = (job: Pick<Job.Job, "updatedAt" | "id">, cursor: Cursor): boolean =>
  job.updatedAt < cursor.updatedAt || (job.updatedAt === cursor.updatedAt && job.id < cursor.id)

/**
 * The page of `limit` jobs out of `more` (one more than asked for, when there is one).
 *
 * @category listing
 */
export const pageOf = (jobs: ReadonlyArray<Job.JobSummary>, limit: number): Page => {
  const page = jobs.slice(0, limit)
  const last = page.at(-1)
  return jobs.length > limit && last !== undefined
    ? { jobs: page, next: { updatedAt: last.updatedAt, id: last.id } }
    : { jobs: page }
}

/**
 * What {@link JobStore} `listOverdue` looks for.
 *
 * @category models
 */
export interface OverdueQuery {
  readonly before: Date
  readonly limit: number
}

/**
 * Whether `job` is unfinished and overdue before `before` (as {@link JobStore} `listOverdue` lists).
 *
 * @category listing
 */
export const isOverdue = (job: Job.Job, before: Date): boolean =>
  !Job.isFinished(job.status) && job.overdueAt !== undefined && Date.parse(job.overdueAt) < before.getTime()

/**
 * An in-memory store: the embedded default, and the reference the conformance suite checks others against.
 *
 * @category constructors
 */
export const makeMemory = Effect.sync(() => {
  const jobs = new Map<string, Job.Job>()
  // The overdue index: the jobs that have an `overdueAt`, so a sweep never walks the finished ones.
  const overdue = new Map<string, Job.Job>()
  const put = (job: Job.Job) => {
    jobs.set(job.id, job)
    if (job.overdueAt === undefined) overdue.delete(job.id)
    else overdue.set(job.id, job)
  }
  const read = (id: Job.JobId) => Option.fromUndefinedOr(jobs.get(id))
  const createMany = Effect.fnUntraced(function* (batch: ReadonlyArray<Job.Job>) {
    const existing: Array<Job.JobId> = []
    for (const job of batch) {
      if (jobs.has(job.id)) existing.push(job.id)
      else put(job)
    }
    if (existing.length > 0) return yield* duplicate(existing)
  })
  const transition = Effect.fnUntraced(function* (transition: Transition) {
    if (!isAllowed(transition)) return yield* invalidTransition(transition)
    const now = new Date(yield* Clock.currentTimeMillis)
    const current = jobs.get(transition.id)
    const next = current === undefined ? undefined : applyTransition(current, transition, now)
    if (next === undefined) return Option.none<Job.Job>()
    put(next)
    return Option.some(next)
  })
  return JobStore.of({
    create: (job) => createMany([job]),
    createMany,
    get: (id) => Effect.sync(() => read(id)),
    getMany: (ids) => Effect.sync(() => ids.map((id) => Option.map(read(id), Job.summaryOf))),
    transition,
    claim: claimVia({ get: (id) => Effect.sync(() => read(id)), transition }),
    listOverdue: (query) =>
      Effect.sync(() =>
        [...overdue.values()]
          .filter((job) => isOverdue(job, query.before))
          .sort((a, b) => Date.parse(a.overdueAt ?? "") - Date.parse(b.overdueAt ?? ""))
          .slice(0, Math.max(0, query.limit))
      ),
    list: (query) =>
      Effect.sync(() => {
        const matching = [...jobs.values()].filter((job) => isListed(job, query))
        const newestFirst = matching.sort((a, b) => (isAfter(a, b) ? 1 : -1))
        const limit = Math.max(0, Math.floor(query.limit))
        return pageOf(newestFirst.slice(0, limit + 1).map(Job.summaryOf), limit)
      })
  })
})

/**
 * The in-memory job store.
 *
 * @category layers
 */
export const layerMemory: Layer.Layer<JobStore> = Layer.effect(JobStore, makeMemory)
