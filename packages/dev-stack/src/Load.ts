/**
 * The load generator: k6's ramping-VUs executor in Node. Each VU is a closed loop on one keep-alive
 * connection (as k6 has), running a {@link Mix} over and over: the same `POST`, `GET`s cycling
 * through ids, or the original scenario (post a job, check it was accepted, read it back). The
 * number of VUs follows `stages`; a constant load is one stage that starts at its target. Every
 * request is measured into a `Stats.Recorder`, never thrown.
 *
 * `npm run load` runs the k6 profiles with it; `npm run bench` uses it where wrk is not installed
 * (see `Wrk`), through the same {@link Generator} interface.
 *
 * Plain Node and undici rather than Effect: a load generator is best a thin loop around a real HTTP
 * client, sharing no code with what it measures.
 *
 * @since 0.0.0
 */
import { performance } from "node:perf_hooks"
import { setTimeout as sleep } from "node:timers/promises"
import { Pool } from "undici"
import * as Stats from "./Stats.ts"

/**
 * One stage of a ramping-VUs profile: move linearly to `target` VUs over `millis`.
 *
 * @category stages
 */
export interface Stage {
  readonly millis: number
  readonly target: number
}

/**
 * How long the stages last altogether, in milliseconds.
 *
 * @category stages
 */
export const totalMillis = (stages: ReadonlyArray<Stage>): number =>
  stages.reduce((sum, stage) => sum + stage.millis, 0)

/**
 * The most VUs any stage asks for.
 *
 * @category stages
 */
export const maxVus = (stages: ReadonlyArray<Stage>, startVus = 1): number =>
  Math.max(startVus, ...stages.map((stage) => stage.target))

/**
 * How many VUs should be running `elapsed` ms in: linear within each stage from the previous
 * target (`startVus` before the first, one VU as k6's `stages` shorthand has), rounded down as k6
 * does; 0 once the stages are over.
 *
 * @category stages
 */
export const vusAt = (stages: ReadonlyArray<Stage>, elapsed: number, startVus = 1): number => {
  let from = startVus
  let start = 0
  for (const stage of stages) {
    if (elapsed < start + stage.millis) {
      const progress = stage.millis === 0 ? 1 : (elapsed - start) / stage.millis
      return Math.floor(from + (stage.target - from) * progress)
    }
    from = stage.target
    start += stage.millis
  }
  return 0
}

/**
 * What each VU sends, an iteration at a time.
 *
 * @category mixes
 */
export type Mix =
  | { readonly _tag: "post"; readonly path: string; readonly body: string }
  | { readonly _tag: "get"; readonly pathPrefix: string; readonly ids: ReadonlyArray<string> }
  | {
      readonly _tag: "scenario"
      readonly postPath: string
      readonly getPrefix: string
      /** The job a VU posts in its iteration: fixed, or made per VU (from 1) and iteration (from 0). */
      readonly body: string | ((vu: number, iteration: number) => string)
    }

/**
 * What to run.
 *
 * @category running
 */
export interface Options {
  readonly baseUrl: string
  readonly mix: Mix
  readonly stages: ReadonlyArray<Stage>
  /** VUs before the first stage; default 1. */
  readonly startVus?: number | undefined
  /** A VU's pause between iterations; default none. */
  readonly thinkTimeMillis?: number | undefined
  /** How long VUs still busy at the end may take to finish their iteration (k6's `gracefulStop`); default as long as they take. */
  readonly gracefulStopMillis?: number | undefined
  /** Called once a second with a progress line. */
  readonly progress?: ((line: string) => void) | undefined
  /** Ends the run early (Ctrl-C). */
  readonly signal?: AbortSignal | undefined
}

/**
 * What a run measured.
 *
 * @category running
 */
export interface Result {
  readonly stats: Stats.Recorder
  readonly durationMillis: number
  readonly maxVus: number
  /** The ids of the jobs the run's `POST`s created. */
  readonly created: ReadonlyArray<string>
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
 * A duration written as k6 writes one: `2m0s`, `3.6s`, `450ms`.
 *
 * @category running
 */
export const formatDuration = (millis: number): string => {
  if (millis < 1000) return `${Math.round(millis)}ms`
  if (millis < 60_000) return `${Number((millis / 1000).toFixed(1))}s`
  const minutes = Math.floor(millis / 60_000)
  return `${minutes}m${Math.round((millis - minutes * 60_000) / 1000)}s`
}

/**
 * Runs the stages and returns what they measured. A failing request is measured, never thrown.
 *
 * @category running
 */
export const run = async (options: Options): Promise<Result> => {
  const startVus = options.startVus ?? 1
  const total = totalMillis(options.stages)
  const vusMax = maxVus(options.stages, startVus)
  const base = new URL(options.baseUrl)
  const basePath = base.pathname.replace(/\/+$/, "")
  // Each VU has one request in flight at most, so one connection per VU, as k6 has.
  const pool = new Pool(base.origin, {
    connections: vusMax,
    pipelining: 1,
    headersTimeout: 60_000,
    bodyTimeout: 60_000
  })
  const stats = new Stats.Recorder()
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

  let next = 0
  const iteration = async (vu: number, iterationNumber: number): Promise<void> => {
    const mix = options.mix
    switch (mix._tag) {
      case "post":
        await send(`POST ${mix.path}`, "POST", mix.path, mix.body)
        return
      case "get":
        await send(`GET ${mix.pathPrefix}{id}`, "GET", `${mix.pathPrefix}${mix.ids[next++ % mix.ids.length]}`)
        return
      case "scenario": {
        // The k6 scripts' iteration (`load/iteration.js`), check for check.
        const body = typeof mix.body === "string" ? mix.body : mix.body(vu, iterationNumber)
        const submitted = await send(`POST ${mix.postPath}`, "POST", mix.postPath, body)
        const id = submitted.status === 200 ? stringField(submitted.body, "request_id") : undefined
        stats.check(submitted.status === 200)
        stats.check(id !== undefined)
        if (id === undefined) return
        created.push(id)
        const read = await send(`GET ${mix.getPrefix}{id}`, "GET", `${mix.getPrefix}${id}`)
        stats.check(read.status === 200)
      }
    }
  }

  // VUs keep their number and iteration count across a ramp-down and a later ramp-up, as k6's do.
  const iterations = new Array<number>(vusMax + 1).fill(0)
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
        if ((options.thinkTimeMillis ?? 0) > 0) {
          await sleep(options.thinkTimeMillis, undefined, { signal: stopped }).catch(() => undefined)
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
    for (let vu = 1; vu <= vusMax && missing > 0; vu++) {
      if (!active.has(vu)) {
        startVu(vu)
        missing--
      }
    }
  }

  const runStarted = performance.now()
  const elapsed = () => performance.now() - runStarted
  const progress = options.progress
  const ticker =
    progress === undefined
      ? undefined
      : setInterval(() => {
          const window = stats.takeWindow()
          const vus = [...active.values()].filter((state) => !state.stopping).length
          const errorRate = (stats.failed / Math.max(1, stats.requests)) * 100
          progress(
            `running (${formatDuration(elapsed()).padStart(6)}), ${String(vus).padStart(3)}/${vusMax} VUs, ` +
              `${stats.iterations} iterations | ${String(window.requests).padStart(5)} req/s, ` +
              `${window.failed} errors/s, ${stats.failed} errors in all (${errorRate.toFixed(2)}%)`
          )
        }, 1000)
  try {
    while (elapsed() < total && options.signal?.aborted !== true) {
      scaleTo(vusAt(options.stages, elapsed(), startVus))
      await sleep(Math.max(1, Math.min(50, total - elapsed())))
    }
    for (const state of active.values()) state.stopping = true
    const allDone = Promise.all([...active.values()].map((state) => state.done)).then(() => true)
    const graceful =
      options.gracefulStopMillis === undefined
        ? await allDone
        : await Promise.race([allDone, sleep(options.gracefulStopMillis).then(() => false)])
    if (!graceful) hardStop.abort()
    await allDone
  } finally {
    clearInterval(ticker)
  }
  const durationMillis = elapsed()
  await pool.close()
  return { stats, durationMillis, maxVus: vusMax, created }
}

/**
 * How the jobs a run created ended up.
 *
 * @category jobs
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
 * Polls the jobs until every one is complete or failed, or the deadline passes. Each round reads
 * only the jobs not yet finished, 32 at a time.
 *
 * @category jobs
 */
export const awaitJobs = async (options: {
  readonly baseUrl: string
  readonly ids: ReadonlyArray<string>
  readonly deadlineMillis: number
  readonly signal?: AbortSignal | undefined
}): Promise<Jobs> => {
  const base = new URL(options.baseUrl)
  const basePath = base.pathname.replace(/\/+$/, "")
  const pool = new Pool(base.origin, { connections: 32 })
  const started = performance.now()
  const deadline = started + options.deadlineMillis
  const interrupted = () => options.signal?.aborted === true
  let unfinished = [...options.ids]
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
  await pool.close()
  return {
    created: options.ids.length,
    complete,
    failed,
    unfinished: unfinished.length,
    drainMillis: performance.now() - started
  }
}

/**
 * What a constant load measured, as a benchmark reports it.
 *
 * @category generators
 */
export interface Measurement {
  readonly requests: number
  readonly seconds: number
  readonly rps: number
  /** Milliseconds. */
  readonly latency: Stats.Trend
  /** Connect, read, write and timeout errors. */
  readonly socketErrors: number
  /** Answers that were not 2xx or 3xx. */
  readonly statusErrors: number
}

/**
 * A constant load: `connections` VUs running `mix` for `seconds`.
 *
 * @category generators
 */
export interface Constant {
  readonly baseUrl: string
  readonly mix: Mix
  readonly connections: number
  readonly seconds: number
}

/**
 * A load generator for constant loads.
 *
 * @category generators
 */
export interface Generator {
  /** What it is, for the report, e.g. `wrk 4.1.0 (2 threads)`. */
  readonly name: string
  readonly run: (load: Constant) => Promise<Measurement>
}

/**
 * This generator, in this process: it shares the CPU with what it measures, so it reads lower
 * than one on threads of its own (wrk). `why` says why it was chosen.
 *
 * @category generators
 */
export const inProcess = (why: string): Generator => ({
  name: `undici closed loop in the bench process (${why})`,
  run: async (load) => {
    const { stats, durationMillis } = await run({
      baseUrl: load.baseUrl,
      mix: load.mix,
      stages: [{ millis: load.seconds * 1000, target: load.connections }],
      startVus: load.connections
    })
    const seconds = durationMillis / 1000
    const { percentile: _percentile, ...latency } = stats.duration()
    return {
      requests: stats.requests,
      seconds,
      rps: stats.requests / seconds,
      latency,
      socketErrors: stats.networkErrors,
      statusErrors: stats.failed - stats.networkErrors
    }
  }
})
