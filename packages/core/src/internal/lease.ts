/**
 * An attempt's hold on its job, for the engine (`JobProcessor`). Claiming a job leases it to the
 * attempt until `overdueAt`; while the attempt waits on the circuit, the rate limit and the call, it
 * renews the lease and its delivery (`JobQueue.renew`) a third of the way through, so only an
 * attempt that stopped renewing (its worker died or hung) loses them. Each renewal is a
 * compare-and-set at the attempt's version: once another attempt took the job over, or the job
 * finished, it fails, and the attempt is fenced off.
 */
import { Clock, Data, Duration, Effect, Option } from "effect"
import type { Job } from "../Job.ts"
import type { Delivery, JobQueue } from "../JobQueue.ts"
import type { JobStore } from "../JobStore.ts"
import type { Vendor } from "../Vendor.ts"

/**
 * The attempt lost its job before its call began: another attempt took the job over, or it was
 * finished meanwhile. Raised inside the circuit, which ignores it.
 */
export class Fenced extends Data.TaggedError("Fenced") {}

/**
 * What a worker knows of an attempt it started. `job` is the record as the attempt last stored it:
 * its version is the one the attempt's next compare-and-set names. `fenced`: the attempt lost the
 * job, and may no longer call, retry, dead-letter, count or hand back. `called`: its vendor call
 * began, so the attempt is spent even if it is cut short.
 */
export interface Attempt {
  readonly delivery: Delivery
  readonly vendor: Vendor
  job: Job
  fenced: boolean
  called: boolean
}

/** How long a lease lasts (the queue's visibility timeout, as its deliveries last) and how often it is renewed. */
export interface Lease {
  readonly millis: number
  readonly renewEvery: number
}

/** The lease that matches the queue's deliveries. */
export const leaseFor = (visibilityTimeout: Duration.Duration): Lease => {
  const millis = Math.max(3, Duration.toMillis(visibilityTimeout))
  return { millis, renewEvery: millis / 3 }
}

/** When a lease taken or renewed at `now` runs out, as the job's `overdueAt`. */
export const leaseUntil = (lease: Lease, now: number): string => new Date(now + lease.millis).toISOString()

/**
 * Extends the attempt's lease by a compare-and-set at its version, which fails (fencing the
 * attempt) once another attempt has taken the job or it finished. Uninterruptible, so stopping
 * the renewals waits for one in flight and the attempt's next write names the version it left.
 */
export const renew = (store: JobStore["Service"], lease: Lease, attempt: Attempt) =>
  Effect.gen(function* () {
    const renewed = yield* store.transition({
      id: attempt.job.id,
      from: "processing",
      to: "processing",
      expectedVersion: attempt.job.version,
      set: { overdueAt: leaseUntil(lease, yield* Clock.currentTimeMillis) }
    })
    if (Option.isSome(renewed)) attempt.job = renewed.value
    else attempt.fenced = true
  }).pipe(Effect.uninterruptible)

const logRenewal = (what: string) => (error: { readonly message: string }) =>
  Effect.logWarning(`renewing the ${what} failed; the next renewal tries again: ${error.message}`)

// Renews the lease and the delivery every `renewEvery` until the attempt is fenced.
const keep = (
  services: { readonly store: JobStore["Service"]; readonly queue: JobQueue["Service"] },
  lease: Lease,
  attempt: Attempt
) =>
  Effect.all(
    [
      renew(services.store, lease, attempt).pipe(Effect.catch(logRenewal("job's lease"))),
      services.queue.renew(attempt.delivery).pipe(Effect.catch(logRenewal("delivery")))
    ],
    { concurrency: 2, discard: true }
  ).pipe(Effect.delay(Duration.millis(lease.renewEvery)), Effect.repeat({ while: () => !attempt.fenced }))

/**
 * Runs `effect` (the waits and the call) while the attempt's lease is kept; ends the renewals
 * before the attempt writes its outcome.
 */
export const whileLeased = <A, E, R>(
  services: { readonly store: JobStore["Service"]; readonly queue: JobQueue["Service"] },
  lease: Lease,
  attempt: Attempt,
  effect: Effect.Effect<A, E, R>
) => Effect.scoped(Effect.andThen(Effect.forkScoped(keep(services, lease, attempt)), effect))

/**
 * Right before the call: the attempt still holds its job, with a lease that outlasts the next
 * renewal (renewed now if the renewals fell behind, as in a store outage). From here on the
 * attempt counts as called.
 */
export const beginCall = (store: JobStore["Service"], lease: Lease, attempt: Attempt) =>
  Effect.gen(function* () {
    const now = yield* Clock.currentTimeMillis
    if (!attempt.fenced && Date.parse(attempt.job.overdueAt ?? "") - now <= lease.renewEvery) {
      yield* renew(store, lease, attempt)
    }
    if (attempt.fenced) return yield* new Fenced()
    attempt.called = true
  })
