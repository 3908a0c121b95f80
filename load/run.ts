/**
 * `npm run load`: runs a load profile from `profiles.js` (the original scenario by default) with
 * the Node runner (dev-stack's `Load`) against a stack it starts itself (dev-stack's `Stack`), or
 * against a running one, prints a progress line each second and a k6-style summary, and exits
 * non-zero when a threshold fails.
 *
 *     npm run load                                  # the scenario against the all-in-one process
 *     npm run load -- --backend=redis --workers=3   # split processes sharing Redis
 *     npm run load -- --url=http://127.0.0.1:8000   # a stack that is already running
 *     npm run load -- --duration-scale=0.05         # a quick smoke run (stages 20 times shorter)
 *
 * Options: `--profile=scenario|spike|soak`, `--backend=embedded|redis`, `--url=<base>`,
 * `--workers=<n>` (redis, default 2), `--redis-url=<url>` (default `REDIS_URL` or
 * redis://127.0.0.1:6379), `--duration-scale=<x>`, `--finish-deadline=<k6 duration>` (how long to
 * wait for the created jobs, default 60s), `--graceful-stop=<k6 duration>` (default 30s),
 * `--summary-export=<file>` (the summary as JSON). Exit codes: 0 passed, 99 a threshold failed
 * (as k6), 1 the run could not be made.
 */
import { Load, Process, Stack } from "@vendorflow/dev-stack"
import { Effect, Exit, Scope } from "effect"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { parseArgs } from "node:util"
import { jobPayload, profiles } from "./profiles.js"
import * as Profiles from "./src/Profile.ts"
import * as Summary from "./src/Summary.ts"

const usage =
  "usage: npm run load -- [--profile=scenario|spike|soak] [--backend=embedded|redis | --url=<base>] " +
  "[--workers=<n>] [--redis-url=<url>] [--duration-scale=<x>] [--finish-deadline=60s] [--graceful-stop=30s] " +
  "[--summary-export=<file>]"

const fail = (message: string): never => {
  console.error(`load: ${message}\n${usage}`)
  process.exit(1)
}

const options = {
  profile: { type: "string", default: "scenario" },
  backend: { type: "string", default: "embedded" },
  url: { type: "string" },
  workers: { type: "string", default: "2" },
  "redis-url": { type: "string", default: process.env["REDIS_URL"] ?? "redis://127.0.0.1:6379" },
  "duration-scale": { type: "string", default: "1" },
  "finish-deadline": { type: "string", default: "60s" },
  "graceful-stop": { type: "string", default: "30s" },
  "summary-export": { type: "string" },
  help: { type: "boolean", default: false }
} as const

const parsed = (() => {
  try {
    return parseArgs({ options, strict: true })
  } catch (error) {
    return fail(error instanceof Error ? error.message : String(error))
  }
})()
const values = parsed.values

if (values.help) {
  console.log(usage)
  process.exit(0)
}

const profileName = values.profile
const profile = Object.hasOwn(profiles, profileName) ? profiles[profileName as keyof typeof profiles] : undefined
if (profile === undefined) fail(`no profile ${profileName}; there are ${Object.keys(profiles).join(", ")}`)
const durationScale = Number(values["duration-scale"])
if (!(durationScale > 0)) fail(`--duration-scale must be a positive number, not ${values["duration-scale"]}`)
const workers = Number(values.workers)
if (!Number.isInteger(workers) || workers < 1) fail(`--workers must be a whole number from 1, not ${values.workers}`)

const millis = (flag: "finish-deadline" | "graceful-stop"): number => {
  try {
    return Profiles.parseDuration(values[flag])
  } catch (error) {
    return fail(`--${flag}: ${error instanceof Error ? error.message : String(error)}`)
  }
}
const finishDeadlineMillis = millis("finish-deadline")
const gracefulStopMillis = millis("graceful-stop")

type Target =
  | { readonly _tag: "embedded" }
  | { readonly _tag: "redis"; readonly redisUrl: string; readonly workers: number }
  | { readonly _tag: "url"; readonly baseUrl: string }

const target: Target =
  values.url !== undefined
    ? { _tag: "url", baseUrl: values.url }
    : values.backend === "embedded"
      ? { _tag: "embedded" }
      : values.backend === "redis"
        ? { _tag: "redis", redisUrl: values["redis-url"], workers }
        : fail(`--backend must be embedded or redis, not ${values.backend}`)

// The scenario is a closed loop with no pause, far faster than the mock vendors finish jobs, so
// every job the API takes adds to the backlog: a fast API passes the default back-pressure limit
// (`MAX_BACKLOG`) and answers 503 from then on (docs/benchmarks.md). The original scenario had no
// such limit, so these stacks raise it unless it is set.
const backlogLimit = process.env["MAX_BACKLOG"] ?? "1000000"

/**
 * The stack to run against, started here as real processes on free ports (each one's output in a
 * log file of a fresh temporary folder) and stopped, with its Redis keys deleted, when the scope
 * closes: the all-in-one process (what `npm start` runs), the split deployment on Redis, or a stack
 * that is already running.
 */
const startStack = (chosen: Target) =>
  Effect.gen(function* () {
    if (chosen._tag === "url") {
      return { baseUrl: chosen.baseUrl.replace(/\/+$/, ""), description: "a running stack", logs: undefined }
    }
    const logs = mkdtempSync(join(tmpdir(), "vendorflow-load-"))
    const settings: Stack.Settings = { logDir: logs, onClose: "stop", baseEnv: Process.inheritedEnv() }
    const env = { MAX_BACKLOG: backlogLimit }
    if (chosen._tag === "embedded") {
      const all = yield* Stack.standalone(settings, { env })
      return {
        baseUrl: all.url,
        description: `embedded (all-in-one process, in-memory store and queue; MAX_BACKLOG=${backlogLimit})`,
        logs
      }
    }
    const stack = yield* Stack.start({
      ...settings,
      redisUrl: chosen.redisUrl,
      workers: chosen.workers,
      label: "vf-load",
      env
    })
    return {
      baseUrl: stack.api,
      description:
        `redis (split: vendorflow-server, ${chosen.workers} vendorflow-worker, 2 mock vendors; ` +
        `REDIS_PREFIX=${stack.prefix}; MAX_BACKLOG=${backlogLimit})`,
      logs
    }
  })

const main = async (chosen: NonNullable<typeof profile>): Promise<number> => {
  const interrupt = new AbortController()
  const onSignal = () => {
    console.error("load: interrupted; stopping the load and the stack")
    interrupt.abort()
  }
  process.once("SIGINT", onSignal)
  process.once("SIGTERM", onSignal)

  const scope = Effect.runSync(Scope.make())
  try {
    const stack = await Effect.runPromise(Scope.provide(startStack(target), scope))
    console.error(
      `load: ${stack.description} at ${stack.baseUrl}${stack.logs === undefined ? "" : `; logs in ${stack.logs}`}`
    )
    const run = await Load.run({
      baseUrl: stack.baseUrl,
      mix: {
        _tag: "scenario",
        postPath: "/jobs",
        getPrefix: "/jobs/",
        body: (vu, iteration) => JSON.stringify(jobPayload(vu, iteration))
      },
      stages: Profiles.timedStages(chosen.stages, durationScale),
      thinkTimeMillis: chosen.thinkTime * 1000,
      gracefulStopMillis,
      progress: (line) => console.error(line),
      signal: interrupt.signal
    })
    const jobs = await Load.awaitJobs({
      baseUrl: stack.baseUrl,
      ids: run.created,
      deadlineMillis: finishDeadlineMillis,
      signal: interrupt.signal
    })
    const summary = Summary.summarize({
      profileName,
      profile: chosen,
      target: stack.description,
      baseUrl: stack.baseUrl,
      durationScale,
      result: { ...run, jobs }
    })
    console.log(Summary.render(summary))
    if (values["summary-export"] !== undefined) {
      writeFileSync(values["summary-export"], `${JSON.stringify(summary, null, 2)}\n`)
    }
    if (interrupt.signal.aborted) return 130
    return summary.ok ? 0 : 99
  } finally {
    await Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

if (profile !== undefined) {
  main(profile).then(
    (code) => process.exit(code),
    (error: unknown) => {
      console.error(`load: ${error instanceof Error ? error.message : String(error)}`)
      process.exit(1)
    }
  )
}
