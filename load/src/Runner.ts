/**
 * The load runner: k6's ramping-VUs executor in Node, for machines without k6. It runs a profile
 * from `../profiles.js` against a base URL with the same iteration as the k6 scripts (`POST /jobs`
 * with `jobPayload`, then `GET /jobs/{id}`, both checked), prints a progress line each second,
 * then polls every job it created until each is finished or the deadline passes.
 *
 * Plain Node and undici rather than Effect: a load generator is best a thin loop around a real HTTP
 * client (one keep-alive connection per VU, as k6 has), sharing no code with what it measures.
 */
import { performance } from "node:perf_hooks"
import { setTimeout as sleep } from "node:timers/promises"
import { Pool } from "undici"
import { jobPayload, type Profile } from "../profiles.js"
import * as Profiles from "./Profile.ts"
import { Stats } from "./Stats.ts"

/**
 * What to run.
 */
export interface Options {
  readonly baseUrl: string
  readonly profile: Profile
  /** Multiplies every stage's duration: 0.05 turns the 2-minute scenario into 6 s. */
  readonly durationScale: number
  /** How long VUs still busy at the end may take to finish their iteration (k6's `gracefulStop`). */
  readonly gracefulStopMillis: number
  /** How long to wait, after the load, for the created jobs to finish. */
  readonly finishDeadlineMillis: number
  /** Called once a second with a progress line. */
  readonly progress: (line: string) => void
  /** Ends the run early (Ctrl-C). */
  readonly signal?: AbortSignal | undefined
}

/**
 * How the jobs created by the run ended up.
 */
export interface Jobs {
  readonly created: number
  readonly complete: number
  readonly failed: number
  readonly unfinished: number
  /** How long after the load the last job finished, or the deadline if some never did. */
  readonly drainMillis: number
}

/**
 * What a run measured.
 */
export interface Result {
  readonly stats: Stats
  readonly durationMillis: number
  readonly maxVus: number
  readonly jobs: Jobs
}

interface Answer {
  readonly status: number
  readonly body: string
}

interface VuState {
  stopping: boolean
  done: Promise<void>
}

const stringField = (text: string, field: string): string | undefined => {
  try {
    const parsed: unknown = JSON.parse(text)
    if (typeof parsed !== "object" || parsed === null) return undefined
    const value: unknown = (parsed as Record<string, unknown>)[field]
    return typeof value === "string" ? value : undefined
  } catch {
    return undefined
  }
}

/**
 * Runs the profile and returns what it measured. A failing request is measured, never thrown.
 */
export const run = async (options: Options): Promise<Result> => {
  const stages = Profiles.timedStages(options.profile.stages, options.durationScale)
  const total = Profiles.totalMillis(stages)
  const maxVus = Profiles.maxVus(stages)
  const base = new URL(options.baseUrl)
  const basePath = base.pathname.replace(/\/+$/, "")
  // Each VU has one request in flight at most, so one connection per VU, as k6 has.
  const pool = new Pool(base.origin, {
    connections: maxVus,
    pipelining: 1,
    headersTimeout: 60_000,
    bodyTimeout: 60_000
  })
  const stats = new Stats()
  const created: Array<string> = []
  // Aborted once the graceful stop is over: requests still in flight then are cut off.
  const hardStop = new AbortController()
  const stopped = AbortSignal.any(options.signal === undefined ? [hardStop.signal] : [hardStop.signal, options.signal])

  const send = async (name: string, method: "GET" | "POST", path: string, body?: string): Promise<Answer> => {
    const started = performance.now()
    try {
      const response = await pool.request({
        method,
        path: `${basePath}${path}`,
        ...(body === undefined ? {} : { body, headers: { "content-type": "application/json" } }),
        signal: stopped
      })
      const text = await response.body.text()
      stats.request(name, performance.now() - started, response.statusCode)
      return { status: response.statusCode, body: text }
    } catch (error) {
      // Cut off by the end of the run: not a failure of the service, so not measured.
      if (stopped.aborted) throw error
      const message = error instanceof Error ? (error.message.split("\n")[0] ?? error.name) : String(error)
      stats.request(name, performance.now() - started, 0, message)
      return { status: 0, body: "" }
    }
  }

  // The k6 scripts' iteration (`../iteration.js`), check for check.
  const iteration = async (vu: number, iterationNumber: number) => {
    const submitted = await send("POST /jobs", "POST", "/jobs", JSON.stringify(jobPayload(vu, iterationNumber)))
    const id = submitted.status === 200 ? stringField(submitted.body, "request_id") : undefined
    stats.check(submitted.status === 200)
    stats.check(id !== undefined)
    if (id === undefined) return
    created.push(id)
    const read = await send("GET /jobs/{id}", "GET", `/jobs/${id}`)
    stats.check(read.status === 200)
  }

  // VUs keep their number and iteration count across a ramp-down and a later ramp-up, as k6's do.
  const iterations = new Array<number>(maxVus + 1).fill(0)
  const active = new Map<number, VuState>()
  const startVu = (vu: number) => {
    const state: VuState = { stopping: false, done: Promise.resolve() }
    active.set(vu, state)
    state.done = (async () => {
      while (!state.stopping && !stopped.aborted) {
        const n = iterations[vu] ?? 0
        iterations[vu] = n + 1
        try {
          await iteration(vu, n)
          stats.iteration()
        } catch {
          stats.iteration(true)
          return
        }
        if (options.profile.thinkTime > 0) {
          await sleep(options.profile.thinkTime * 1000, undefined, { signal: stopped }).catch(() => undefined)
        }
      }
    })().finally(() => active.delete(vu))
  }
  const scaleTo = (target: number) => {
    const running = [...active].filter(([, state]) => !state.stopping)
    if (running.length > target) {
      // The highest-numbered VUs finish their iteration and stop (k6's graceful ramp-down).
      for (const [, state] of running.sort(([a], [b]) => b - a).slice(0, running.length - target)) {
        state.stopping = true
      }
      return
    }
    let missing = target - running.length
    // A VU still finishing its last iteration carries on rather than a new one starting.
    for (const state of active.values()) {
      if (missing > 0 && state.stopping) {
        state.stopping = false
        missing--
      }
    }
    for (let vu = 1; vu <= maxVus && missing > 0; vu++) {
      if (!active.has(vu)) {
        startVu(vu)
        missing--
      }
    }
  }

  const runStarted = performance.now()
  const elapsed = () => performance.now() - runStarted
  const ticker = setInterval(() => {
    const window = stats.takeWindow()
    const vus = [...active.values()].filter((state) => !state.stopping).length
    const errorRate = (stats.failed / Math.max(1, stats.requests)) * 100
    options.progress(
      `running (${Profiles.formatDuration(elapsed()).padStart(6)}), ${String(vus).padStart(3)}/${maxVus} VUs, ` +
        `${stats.iterations} iterations | ${String(window.requests).padStart(5)} req/s, ` +
        `${window.failed} errors/s, ${stats.failed} errors in all (${errorRate.toFixed(2)}%)`
    )
  }, 1000)
  try {
    while (elapsed() < total && options.signal?.aborted !== true) {
      scaleTo(Profiles.vusAt(stages, elapsed()))
      await sleep(Math.max(1, Math.min(50, total - elapsed())))
    }
    for (const state of active.values()) state.stopping = true
    const busy = [...active.values()].map((state) => state.done)
    const allDone = Promise.all(busy).then(() => true)
    const graceful = await Promise.race([allDone, sleep(options.gracefulStopMillis).then(() => false)])
    if (!graceful) hardStop.abort()
    await allDone
  } finally {
    clearInterval(ticker)
  }
  const durationMillis = elapsed()

  const jobs = await awaitJobs(pool, basePath, created, options.finishDeadlineMillis, options.signal)
  await pool.close()
  return { stats, durationMillis, maxVus, jobs }
}

/**
 * Polls the created jobs until every one is complete or failed, or the deadline passes. Each round
 * reads only the jobs not yet finished, 32 at a time.
 */
const awaitJobs = async (
  pool: Pool,
  basePath: string,
  ids: ReadonlyArray<string>,
  deadlineMillis: number,
  signal: AbortSignal | undefined
): Promise<Jobs> => {
  const started = performance.now()
  const deadline = started + deadlineMillis
  const interrupted = () => signal?.aborted === true
  let unfinished = [...ids]
  let complete = 0
  let failed = 0
  const statusOf = async (id: string): Promise<string | undefined> => {
    try {
      const response = await pool.request({ method: "GET", path: `${basePath}/jobs/${id}` })
      const text = await response.body.text()
      return response.statusCode === 200 ? stringField(text, "status") : undefined
    } catch {
      return undefined
    }
  }
  while (unfinished.length > 0 && performance.now() < deadline && !interrupted()) {
    const round = unfinished
    const still: Array<string> = []
    let next = 0
    const reader = async () => {
      while (next < round.length) {
        const id = round[next++] ?? ""
        // Past the deadline the rest of the round counts as unfinished, unread.
        const status = performance.now() < deadline && !interrupted() ? await statusOf(id) : undefined
        if (status === "complete") complete++
        else if (status === "failed") failed++
        else still.push(id)
      }
    }
    await Promise.all(Array.from({ length: 32 }, reader))
    unfinished = still
    // Nothing finished since the last round: give the workers a moment rather than spin.
    if (unfinished.length > 0 && still.length === round.length) await sleep(250)
  }
  return {
    created: ids.length,
    complete,
    failed,
    unfinished: unfinished.length,
    drainMillis: performance.now() - started
  }
}
