/**
 * The client's side of a running stack, for whole-system tests: submit jobs, read them back, wait
 * for them with a deadline; and what the vendors and Redis say happened: the mock vendors' own
 * records of what arrived (`/arrivals`) and what they called back (`/callbacks`), a vendor's dead
 * letters, and figures over those records.
 *
 * @since 0.0.0
 */
import type { VendorSimulator } from "@vendorflow/adapter-kit/simulator"
import type { MockAsyncServer } from "@vendorflow/adapter-mock-async"
import { RedisKeys } from "@vendorflow/redis"
import { Duration, Effect, Schedule } from "effect"
import { execFileSync } from "node:child_process"
import * as Stats from "./Stats.ts"

/**
 * A job as `GET /jobs/{id}` shows it, with its version from the ETag.
 *
 * @category jobs
 */
export interface JobView {
  readonly request_id: string
  readonly status: string
  readonly attempts: number
  readonly updated_at: string
  readonly result?: unknown
  readonly error?: { readonly reason: string; readonly message: string }
  readonly version: number
}

/**
 * `POST /jobs` with `payload`; with `idempotencyKey`, under that key.
 *
 * @category jobs
 */
export const submit = (api: string, payload: object, idempotencyKey?: string) =>
  Effect.promise(async () => {
    const response = await fetch(`${api}/jobs`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        ...(idempotencyKey === undefined ? {} : { "idempotency-key": idempotencyKey })
      },
      body: JSON.stringify(payload)
    })
    return { status: response.status, body: (await response.json()) as { request_id?: string } }
  })

/**
 * `POST /jobs` under `idempotencyKey` as a careful client does: a refused connection, a reset or a
 * 503 (a server restarting, Redis away) is tried again every 200 ms, for at most `within`.
 *
 * @category jobs
 */
export const submitUntilAccepted = (api: string, payload: object, idempotencyKey: string, within: Duration.Input) =>
  Effect.tryPromise(async () => {
    const response = await fetch(`${api}/jobs`, {
      method: "POST",
      headers: { "content-type": "application/json", "idempotency-key": idempotencyKey },
      body: JSON.stringify(payload)
    })
    const body = (await response.json()) as { request_id?: string }
    if (response.status !== 200 || body.request_id === undefined) throw new Error(`answered ${response.status}`)
    return body.request_id
  }).pipe(
    Effect.retry({ schedule: Schedule.spaced("200 millis") }),
    Effect.timeoutOrElse({
      duration: within,
      orElse: () =>
        Effect.die(
          new Error(
            `POST /jobs under ${idempotencyKey} not accepted within ${Duration.format(Duration.fromInputUnsafe(within))}`
          )
        )
    })
  )

/**
 * `GET /jobs/{id}`; the version is read from the ETag (`"<id>.<version>"`).
 *
 * @category jobs
 */
export const readJob = (api: string, id: string) =>
  Effect.promise(async () => {
    const response = await fetch(`${api}/jobs/${id}`)
    const body = (await response.json()) as Omit<JobView, "version">
    const version = Number(/\.(\d+)"$/.exec(response.headers.get("etag") ?? "")?.[1] ?? Number.NaN)
    return { ...body, version } satisfies JobView
  })

const finished = (job: JobView) => job.status === "complete" || job.status === "failed"

/**
 * Polls every job until all are finished or `within` has passed. Each finished job is returned as
 * it was first seen finished; the unfinished ones as last read.
 *
 * @category jobs
 */
export const pollFinished = (api: string, ids: ReadonlyArray<string>, within: Duration.Input) =>
  Effect.gen(function* () {
    let unfinished: ReadonlyArray<JobView> = []
    let waiting = [...ids]
    const done = new Map<string, JobView>()
    yield* Effect.gen(function* () {
      const jobs = yield* Effect.forEach(waiting, (id) => readJob(api, id), { concurrency: 20 })
      for (const [i, job] of jobs.entries()) if (finished(job)) done.set(waiting[i] ?? "", job)
      unfinished = jobs.filter((job) => !finished(job))
      waiting = waiting.filter((id) => !done.has(id))
    }).pipe(
      Effect.repeat({ schedule: Schedule.spaced("250 millis"), until: () => waiting.length === 0 }),
      Effect.timeoutOption(within)
    )
    return { done, unfinished: waiting.length === 0 ? [] : unfinished }
  })

/**
 * Polls every job until all are finished; dies with the unfinished ones past `within`. Each job is
 * returned as it was first seen finished.
 *
 * @category jobs
 */
export const awaitAll = (api: string, ids: ReadonlyArray<string>, within: Duration.Input) =>
  Effect.flatMap(pollFinished(api, ids, within), ({ done, unfinished }) =>
    unfinished.length === 0
      ? Effect.succeed(done)
      : Effect.die(new Error(`${unfinished.length} job(s) unfinished, e.g. ${JSON.stringify(unfinished.slice(0, 5))}`))
  )

/**
 * One call as a mock vendor recorded it.
 *
 * @category vendors
 */
export type Arrival = VendorSimulator.Arrival

/**
 * One callback as the mock async vendor recorded it.
 *
 * @category vendors
 */
export type Callback = MockAsyncServer.CallbackRecord

const getJson = <A>(url: string) => Effect.promise(async () => (await (await fetch(url)).json()) as A)

/**
 * A mock vendor's `/arrivals`.
 *
 * @category vendors
 */
export const arrivals = (vendor: string) => getJson<ReadonlyArray<Arrival>>(`${vendor}/arrivals`)

/**
 * The mock async vendor's `/callbacks`.
 *
 * @category vendors
 */
export const callbacks = (vendor: string) => getJson<ReadonlyArray<Callback>>(`${vendor}/callbacks`)

/**
 * The most arrivals in any one-second window.
 *
 * @category vendors
 */
export const worstWindow = (arrived: ReadonlyArray<Arrival>): number =>
  Stats.busiestWindow(
    arrived.map((arrival) => arrival.at),
    1000
  ).count

/**
 * Arrivals for a job that had arrived before.
 *
 * @category vendors
 */
export const repeated = (arrived: ReadonlyArray<Arrival>): ReadonlyArray<Arrival> => {
  const seen = new Set<string>()
  return arrived.filter((a) => a.jobId !== null && (seen.has(a.jobId) ? true : (seen.add(a.jobId), false)))
}

/**
 * Runs one `redis-cli` command against `url` and returns its raw output. A Redis Cluster's seed
 * list (several URLs, comma-separated) is asked in cluster mode (`-c`, following redirects),
 * through the first seed that answers.
 *
 * @category redis
 */
export const redisCli = (url: string, ...args: ReadonlyArray<string>) =>
  Effect.sync(() => {
    const seeds = url.split(",")
    if (seeds.length === 1) return execFileSync("redis-cli", ["-u", url, ...args], { encoding: "utf8" })
    const answering = seeds.find((seed) => {
      try {
        return execFileSync("redis-cli", ["-u", seed, "PING"], { encoding: "utf8" }).includes("PONG")
      } catch {
        return false
      }
    })
    return execFileSync("redis-cli", ["-c", "-u", answering ?? seeds[0]!, ...args], { encoding: "utf8" })
  })

/**
 * A dead letter in a vendor's dead-letter stream.
 *
 * @category redis
 */
export interface DeadLetter {
  readonly jobId: string
  readonly reason: string
  /** When it was written, ms since the epoch. */
  readonly at: number
}

/**
 * The vendor's dead-letter stream, read with `redis-cli`.
 *
 * @category redis
 */
export const deadLetters = (url: string, prefix: string, vendor: string) =>
  Effect.map(
    redisCli(url, "XRANGE", RedisKeys.vendor(prefix, vendor).dead, "-", "+"),
    (output): ReadonlyArray<DeadLetter> => {
      // Raw output: the entry id, then each field and value, one a line.
      const lines = output.split("\n")
      const letters: Array<DeadLetter> = []
      lines.forEach((line, i) => {
        if (line === "jobId") letters.push({ jobId: lines[i + 1] ?? "", reason: "", at: Number.NaN })
        const last = letters[letters.length - 1]
        if (line === "reason" && last !== undefined)
          letters[letters.length - 1] = { ...last, reason: lines[i + 1] ?? "" }
        if (line === "at" && last !== undefined)
          letters[letters.length - 1] = { ...last, at: Date.parse(lines[i + 1] ?? "") }
      })
      return letters
    }
  )
