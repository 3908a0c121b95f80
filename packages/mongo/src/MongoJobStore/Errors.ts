/**
 * What a MongoDB failure means for the engine: `Unavailable` (it may pass) or `Rejected` (the server
 * refused for good), and the store errors made from the driver's. Re-exported by `MongoJobStore`
 * ({@link classify}).
 *
 * @since 0.1.0
 */
import { type Job, JobStore } from "@vendorflow/core"
import { BSON, MongoBulkWriteError, MongoInvalidArgumentError, MongoServerError } from "mongodb"

/** The driver's message, with the server's code name when it has one. */
export const messageOf = (cause: unknown): string => {
  const message = cause instanceof Error ? cause.message : String(cause)
  return cause instanceof MongoServerError && cause.codeName !== undefined ? `${message} (${cause.codeName})` : message
}

// MongoDB's server error codes used here by name.
export const DuplicateKey = 11000
export const IndexOptionsConflict = 85
export const IndexKeySpecsConflict = 86
export const NamespaceNotFound = 26
export const IndexNotFound = 27
export const IndexBuildAborted = 276

/**
 * The server's answers that mean "not now": the server or its replica set is changing, busy or
 * slow. The codes of the server's network, retriable, not-primary, time-limit, interruption and
 * overload categories (`src/mongo/base/error_codes.yml`), and the conflicts that pass.
 */
const transientCodes = new Set<number>([
  6, // HostUnreachable
  7, // HostNotFound
  24, // LockTimeout
  43, // CursorNotFound
  46, // LockBusy
  50, // MaxTimeMSExpired: our own `timeout`
  63, // StaleShardVersion
  64, // WriteConcernTimeout: the write is on the primary, not yet on a majority
  89, // NetworkTimeout
  91, // ShutdownInProgress
  100, // UnsatisfiableWriteConcern: too few members up for `majority`
  112, // WriteConflict
  133, // FailedToSatisfyReadPreference
  134, // ReadConcernMajorityNotAvailableYet
  145, // PooledConnectionsDropped
  150, // StaleEpoch
  175, // QueryPlanKilled
  189, // PrimarySteppedDown
  202, // NetworkInterfaceExceededTimeLimit
  216, // ElectionInProgress
  237, // CursorKilled
  249, // StaleDbVersion
  262, // ExceededTimeLimit
  365, // TemporarilyUnavailable
  402, // ResourceExhausted
  407, // PooledConnectionAcquisitionExceededTimeLimit
  433, // AdmissionQueueOverflow
  449, // RateLimitExceeded
  450, // PooledConnectionAcquisitionRejected
  453, // InterruptedDueToReshardingCriticalSection
  462, // IngressRequestRateLimitExceeded
  9001, // SocketException
  10058, // LegacyNotPrimary
  10107, // NotWritablePrimary
  11600, // InterruptedAtShutdown
  11601, // Interrupted
  11602, // InterruptedDueToReplStateChange
  13388, // StaleConfig
  13435, // NotPrimaryNoSecondaryOk
  13436, // NotPrimaryOrSecondary
  14031, // OutOfDiskSpace: every write fails until there is room again; no job's fault
  91331, // RetriableRemoteCommandFailure
  10045600 // InterruptedDueToFCVChange
])

// Labels the server or the driver puts on errors worth another try.
const transientLabels = [
  "RetryableWriteError",
  "TransientTransactionError",
  "RetryableError",
  "SystemOverloadedError",
  "ResetPool",
  "PoolRequestedRetry"
] as const

/**
 * Whether a failure may pass (`Unavailable`: the network, server selection, the pool, an election,
 * a timeout, a retryable code or label) or the server refused the operation for good (`Rejected`:
 * any other server error, such as a document over 16 MB, a validator, missing privileges or a bad
 * query; or a document the driver would not send). Anything else is `Unavailable`.
 *
 * @category errors
 */
export const classify = (cause: unknown): "Unavailable" | "Rejected" => {
  if (cause instanceof MongoServerError) {
    if (transientLabels.some((label) => cause.hasErrorLabel(label))) return "Unavailable"
    return transientCodes.has(Number(cause.code)) ? "Unavailable" : "Rejected"
  }
  return cause instanceof MongoInvalidArgumentError || BSON.BSONError.isBSONError(cause) ? "Rejected" : "Unavailable"
}

/** A store error while doing `what`, `Unavailable` or `Rejected` as {@link classify} says. */
export const failure =
  (what: string) =>
  (cause: unknown): JobStore.JobStoreError =>
    new JobStore.JobStoreError({ reason: classify(cause), message: `MongoDB: ${what}: ${messageOf(cause)}` })

/** A store error while doing `what` that may pass whatever the cause (connecting, making indexes). */
export const unavailable =
  (what: string) =>
  (cause: unknown): JobStore.JobStoreError =>
    new JobStore.JobStoreError({ reason: "Unavailable", message: `MongoDB: ${what}: ${messageOf(cause)}` })

/** Whether the server refused with one of `codes`. */
export const hasCode = (cause: unknown, ...codes: ReadonlyArray<number>): boolean =>
  cause instanceof MongoServerError && codes.includes(Number(cause.code))

/** The ids a failed insert of `jobs` found existing, when ids that exist are all that went wrong. */
const existingIds = (jobs: ReadonlyArray<Job.Job>, cause: unknown): ReadonlyArray<Job.JobId> => {
  if (cause instanceof MongoBulkWriteError) {
    // A bulk write's error carries the code of its first write error only, so each one is checked.
    const errors = [cause.writeErrors].flat()
    return errors.every((error) => error.code === DuplicateKey)
      ? errors.flatMap((error) => jobs[error.index]?.id ?? [])
      : []
  }
  return hasCode(cause, DuplicateKey) ? jobs.map((job) => job.id) : []
}

/** A failed insert of `jobs`: `Duplicate` (the others are stored), or as {@link classify} says. */
export const insertFailure =
  (jobs: ReadonlyArray<Job.Job>) =>
  (cause: unknown): JobStore.JobStoreError => {
    const existing = existingIds(jobs, cause)
    if (existing.length > 0) return JobStore.duplicate(existing)
    return failure(jobs.length === 1 ? `storing job ${jobs[0]!.id}` : `storing ${jobs.length} jobs`)(cause)
  }
