/**
 * An attempt's hold on its job, for the engine (`JobProcessor`). Claiming a job leases it to the
 * attempt until `overdueAt`; while the attempt waits on the circuit, the rate limit and the call, it
 * renews the lease and its delivery (`JobQueue.renew`) a third of the way through, so only an
 * attempt that stopped renewing (its worker died or hung) loses them. Each renewal is a
 * compare-and-set at the attempt's version: once another attempt took the job over, or the job
 * finished, it fails, and the attempt is fenced off.
 */
import { Clock, Data, Deferred, Duration, Effect, Fiber, Option, type Result } from "effect"
import type { Job } from "../Job.ts"
import type { Delivery, JobQueue } from "../JobQueue.ts"
import type { JobStore } from "../JobStore.ts"
import type { Vendor, VendorError, VendorOutcome } from "../Vendor.ts"

/**
 * The attempt lost its job before its call began: another attempt took the job over, or it was
 * finished meanwhile. Raised inside the circuit, which ignores it.
 */
export class Fenced extends Data.TaggedError("Fenced") {}

/**
 * What a worker knows of an attempt it started. `job` is the record as the attempt last stored it:
 * its version is the one the attempt's next compare-and-set names. `fenced`: the attempt lost the
 * job, and may no longer call, retry, dead-letter, count or hand back. `called`: its vendor call
 * began, so the attempt is spent even if it is cut short. `answer`: what the vendor answered (or
 * the error its call ended with), once it has. `settled`: the attempt's outcome is being written,
 * and a shutdown leaves it to finish.
 */
export interface Attempt {
  readonly delivery: Delivery
  readonly vendor: Vendor
  job: Job
  fenced: boolean
  called: boolean
  answer: Result.Result<VendorOutcome, VendorError> | undefined
  settled: boolean
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

/**
 * The attempts a worker holds now, and the one loop that renews them all (see {@link whileLeased}):
 * a fiber and a timer per attempt cost the worker a tenth of its CPU per job, and the renewals
 * due at the same time go to the store and the queue together.
 */
export interface Holder {
  readonly services: { readonly store: JobStore["Service"]; readonly queue: JobQueue["Service"] }
  readonly lease: Lease
  readonly held: Set<Held>
  /** Whether the loop runs: while anything is held; it is stopped once nothing is. */
  looping: boolean
  loop: Fiber.Fiber<void> | undefined
  /** Which loop is the current one: a stopped loop's end must not mark a newer one stopped. */
  generation: number
}

// One attempt held: when its next renewal is due, and the renewal in flight, if any, which its
// attempt waits for before it writes its outcome (that renewal moves the version it names).
interface Held {
  readonly attempt: Attempt
  dueAt: number
  renewing: Deferred.Deferred<void> | undefined
}

/** A holder of no attempts yet. */
export const makeHolder = (services: Holder["services"], lease: Lease): Holder => ({
  services,
  lease,
  held: new Set(),
  looping: false,
  loop: undefined,
  generation: 0
})

// Renews one held attempt's lease and delivery, and marks when the next renewal is due. Its
// `renewing` was set when it was found due, before anything could let its attempt go.
const renewHeld = (holder: Holder, held: Held) =>
  Effect.all(
    [
      renew(holder.services.store, holder.lease, held.attempt).pipe(Effect.catch(logRenewal("job's lease"))),
      holder.services.queue.renew(held.attempt.delivery).pipe(Effect.catch(logRenewal("delivery")))
    ],
    { concurrency: 2, discard: true }
  ).pipe(
    Effect.andThen(Clock.currentTimeMillis),
    Effect.map((now) => {
      held.dueAt = now + holder.lease.renewEvery
      if (held.attempt.fenced) holder.held.delete(held)
    }),
    Effect.ensuring(
      Effect.suspend(() => {
        const renewing = held.renewing
        held.renewing = undefined
        return renewing === undefined ? Effect.void : Deferred.succeed(renewing, undefined)
      })
    )
  )

// Wakes four times a renewal period, so an attempt is renewed at most a quarter period late (its
// lease lasts three), and renews every attempt then due, together; ends once nothing is held.
const loop = (holder: Holder, generation: number): Effect.Effect<void> =>
  Effect.whileLoop({
    while: () => holder.held.size > 0,
    body: () =>
      Effect.sleep(Duration.millis(holder.lease.renewEvery / 4)).pipe(
        Effect.andThen(
          // Uninterruptible: a renewal marked due (which its attempt may be waiting for) always runs.
          Effect.uninterruptible(
            Effect.flatMap(Clock.currentTimeMillis, (now) => {
              const due: Array<Held> = []
              for (const held of holder.held) {
                if (held.dueAt > now || held.renewing !== undefined) continue
                held.renewing = Deferred.makeUnsafe<void>()
                due.push(held)
              }
              return Effect.forEach(due, (held) => renewHeld(holder, held), { concurrency: "unbounded", discard: true })
            })
          )
        )
      ),
    step: () => {}
  }).pipe(
    Effect.ensuring(
      Effect.sync(() => {
        if (holder.generation === generation) stopped(holder)
      })
    )
  )

const stopped = (holder: Holder) => {
  holder.looping = false
  holder.loop = undefined
}

/**
 * Runs `effect` (the waits and the call) while the holder keeps the attempt's lease; once it ends
 * (or is interrupted), the attempt is let go, after the renewal in flight, if any, so the attempt's
 * next write names the version that renewal left.
 */
export const whileLeased = <A, E, R>(holder: Holder, attempt: Attempt, effect: Effect.Effect<A, E, R>) =>
  Effect.flatMap(Clock.currentTimeMillis, (now) => {
    const held: Held = { attempt, dueAt: now + holder.lease.renewEvery, renewing: undefined }
    holder.held.add(held)
    let run: Effect.Effect<A, E, R> = effect
    if (!holder.looping) {
      holder.looping = true
      const started = Effect.forkDetach(loop(holder, ++holder.generation))
      run = Effect.andThen(
        Effect.tap(started, (fiber) => Effect.sync(() => (holder.loop = fiber))),
        effect
      )
    }
    return Effect.ensuring(
      run,
      Effect.suspend(() => {
        holder.held.delete(held)
        return held.renewing === undefined ? Effect.void : Deferred.await(held.renewing)
      }).pipe(
        // The last attempt let go: the loop (and its timer) stops now rather than at its next wake.
        Effect.andThen(
          Effect.sync(() => {
            const fiber = holder.loop
            if (holder.held.size > 0 || fiber === undefined) return
            stopped(holder)
            fiber.interruptUnsafe()
          })
        )
      )
    )
  })

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
