/**
 * The indexes the store makes at start-up, the queries they serve (each names its index as a
 * hint), and the TTL index on finished jobs. Re-exported by `MongoJobStore`.
 *
 * @since 0.1.0
 */
import type { JobStore } from "@vendorflow/core"
import { Config, ConfigProvider, Duration, Effect } from "effect"
import type { Collection, Filter, FindOptions } from "mongodb"
import { type JobDocument, summaryProjection } from "./Document.ts"
import {
  hasCode,
  IndexBuildAborted,
  IndexKeySpecsConflict,
  IndexNotFound,
  IndexOptionsConflict,
  NamespaceNotFound,
  unavailable
} from "./Errors.ts"

/**
 * The indexes made at start-up, each with the queries it serves. Every query names its index as a
 * hint ({@link listQuery}, {@link overdueQuery}), so a missing index fails the query instead of
 * scanning the collection. For the job lists, equality fields first, then `updated_at` and `_id` in
 * the list's order (newest first); for the sweeper, `overdue_at`, sparse since only unfinished jobs
 * have it. Named as MongoDB names an index by default, so one made by hand with the same keys is the
 * same index. The TTL index is handled apart ({@link finishedTtlIndexName}).
 *
 * Indexes of earlier versions (`status_1_updated_at_1`, `vendor_1_status_1`,
 * `owner_1_status_1_updated_at_-1`) are left alone: a process of that version may still run. Drop
 * them by hand once none does.
 *
 * @category constants
 */
export const indexes = [
  // `list` by status.
  { key: { status: 1, updated_at: -1, _id: -1 }, name: "status_1_updated_at_-1__id_-1" },
  // `list` by status and vendor.
  { key: { status: 1, vendor: 1, updated_at: -1, _id: -1 }, name: "status_1_vendor_1_updated_at_-1__id_-1" },
  // `list` by owner (an API key's jobs) and status.
  { key: { owner: 1, status: 1, updated_at: -1, _id: -1 }, name: "owner_1_status_1_updated_at_-1__id_-1" },
  // `list` by owner, status and vendor.
  {
    key: { owner: 1, status: 1, vendor: 1, updated_at: -1, _id: -1 },
    name: "owner_1_status_1_vendor_1_updated_at_-1__id_-1"
  },
  // `listOverdue` (the sweeper): the jobs that have an `overdue_at`, most overdue first.
  { key: { overdue_at: 1 }, name: "overdue_at_1", sparse: true }
] as const

/**
 * The name of one of {@link indexes}.
 *
 * @category constants
 */
export type IndexName = (typeof indexes)[number]["name"]

/**
 * A find as the store sends it: the filter and the options (sort, limit, projection, hint).
 *
 * @category queries
 */
export interface FindQuery {
  readonly filter: Filter<JobDocument>
  readonly options: FindOptions & { readonly hint: IndexName }
}

/**
 * The index that serves a `list` query with these filters.
 *
 * @category queries
 */
export const listIndexName = (query: Pick<JobStore.ListQuery, "vendor" | "owner">): IndexName =>
  query.owner === undefined
    ? query.vendor === undefined
      ? "status_1_updated_at_-1__id_-1"
      : "status_1_vendor_1_updated_at_-1__id_-1"
    : query.vendor === undefined
      ? "owner_1_status_1_updated_at_-1__id_-1"
      : "owner_1_status_1_vendor_1_updated_at_-1__id_-1"

/**
 * The find of a `list` page: the status (and vendor, and owner), after the cursor in newest-first
 * order, one more than the limit (to know whether a next page exists), without the payload. The
 * cursor's time bounds the index scan (`updated_at ≤ t`); the `$or` then drops the jobs of that
 * same millisecond that came before the cursor.
 *
 * @category queries
 */
export const listQuery = (query: JobStore.ListQuery): FindQuery => {
  const after = query.after
  return {
    filter: {
      status: query.status,
      ...(query.vendor === undefined ? {} : { vendor: query.vendor }),
      ...(query.owner === undefined ? {} : { owner: query.owner }),
      ...(after === undefined
        ? {}
        : {
            updated_at: { $lte: new Date(after.updatedAt) },
            $or: [
              { updated_at: { $lt: new Date(after.updatedAt) } },
              { updated_at: new Date(after.updatedAt), _id: { $lt: after.id } }
            ]
          })
    },
    options: {
      sort: { updated_at: -1, _id: -1 },
      limit: query.limit + 1,
      projection: summaryProjection,
      hint: listIndexName(query)
    }
  }
}

/**
 * The find of a `listOverdue` query: the jobs overdue before a time, most overdue first. Only
 * unfinished jobs have `overdue_at`.
 *
 * @category queries
 */
export const overdueQuery = (query: JobStore.OverdueQuery): FindQuery => ({
  filter: { overdue_at: { $lt: query.before } },
  options: { sort: { overdue_at: 1 }, limit: query.limit, hint: "overdue_at_1" }
})

/**
 * The TTL index's name, fixed so start-up can find it again to change it.
 *
 * @category constants
 */
export const finishedTtlIndexName = "finished_at_1"

/**
 * `expireAfterSeconds` for a TTL: `undefined` when the TTL is off (absent or infinite), else whole
 * seconds up to 2^31 - 1, as MongoDB takes them; a TTL under 1 second is refused with a line that
 * says so (it would delete every finished job within a minute).
 *
 * @category constructors
 */
export const ttlSeconds = (ttl: Duration.Input | undefined): Effect.Effect<number | undefined, Config.ConfigError> => {
  if (ttl === undefined) return Effect.undefined
  const duration = Duration.fromInputUnsafe(ttl)
  const seconds = Duration.toSeconds(duration)
  if (!Number.isFinite(seconds)) return Effect.undefined
  if (seconds < 1) {
    return Effect.fail(
      new Config.ConfigError(
        new ConfigProvider.SourceError({
          message: `MONGODB_FINISHED_TTL is ${Duration.format(duration)}: it must be at least 1 second, or unset`
        })
      )
    )
  }
  return Effect.succeed(Math.min(Math.floor(seconds), 2_147_483_647))
}

/**
 * Makes the indexes and settles the TTL index, tolerating other processes doing the same at once:
 * making an index that exists is a no-op; a TTL index of another duration is dropped (already gone
 * is fine: another process dropped it) and made again, a few times over if other processes drop or
 * make it meanwhile. Without a TTL the TTL index is left as it is: another process may rely on it.
 * No other index is ever dropped, so no process's queries lose an index another made.
 */
export const settleIndexes = Effect.fnUntraced(function* (
  collection: Collection<JobDocument>,
  expireAfterSeconds: number | undefined,
  what: string
) {
  const indexFailure = unavailable(`making the indexes of ${what}`)
  yield* Effect.tryPromise({
    try: () => collection.createIndexes(indexes.map((index) => ({ ...index }))),
    catch: indexFailure
  })
  if (expireAfterSeconds === undefined) return
  const ttlIndex = { key: { finished_at: 1 }, name: finishedTtlIndexName, expireAfterSeconds } as const
  const dropTtl = Effect.tryPromise({
    try: () => collection.dropIndex(finishedTtlIndexName),
    catch: (cause) => cause
  }).pipe(
    Effect.catchIf(
      (cause) => hasCode(cause, IndexNotFound, NamespaceNotFound),
      () => Effect.void
    )
  )
  const conflict = (cause: unknown) => hasCode(cause, IndexOptionsConflict, IndexKeySpecsConflict)
  yield* Effect.tryPromise({ try: () => collection.createIndexes([ttlIndex]), catch: (cause) => cause }).pipe(
    // Another duration: dropped, then made again by the retry. A build another process's drop
    // aborted is made again too.
    Effect.tapError((cause) => (conflict(cause) ? dropTtl : Effect.void)),
    Effect.retry({ times: 3, while: (cause) => conflict(cause) || hasCode(cause, IndexBuildAborted) }),
    Effect.mapError((cause) =>
      conflict(cause)
        ? unavailable(
            `making the TTL index of ${what} (${expireAfterSeconds} s): made again, it still conflicts (another process starting with another MONGODB_FINISHED_TTL, or an index on finished_at made by hand)`
          )(cause)
        : indexFailure(cause)
    )
  )
})
