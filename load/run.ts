/**
 * `npm run load`: runs a load profile from `profiles.js` (the original scenario by default) with
 * the Node runner against a stack it starts itself, or against a running one, prints a progress
 * line each second and a k6-style summary, and exits non-zero when a threshold fails.
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
import { writeFileSync } from "node:fs"
import { parseArgs } from "node:util"
import { profiles } from "./profiles.js"
import * as Profiles from "./src/Profile.ts"
import * as Runner from "./src/Runner.ts"
import * as Stack from "./src/Stack.ts"
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

const target: Stack.Target =
  values.url !== undefined
    ? { _tag: "url", baseUrl: values.url }
    : values.backend === "embedded"
      ? { _tag: "embedded" }
      : values.backend === "redis"
        ? { _tag: "redis", redisUrl: values["redis-url"], workers }
        : fail(`--backend must be embedded or redis, not ${values.backend}`)

const main = async (chosen: NonNullable<typeof profile>): Promise<number> => {
  const interrupt = new AbortController()
  const onSignal = () => {
    console.error("load: interrupted; stopping the load and the stack")
    interrupt.abort()
  }
  process.once("SIGINT", onSignal)
  process.once("SIGTERM", onSignal)

  const stack = await Stack.startStack(target)
  try {
    console.error(
      `load: ${stack.description} at ${stack.baseUrl}${stack.logs === undefined ? "" : `; logs in ${stack.logs}`}`
    )
    const result = await Runner.run({
      baseUrl: stack.baseUrl,
      profile: chosen,
      durationScale,
      gracefulStopMillis,
      finishDeadlineMillis,
      progress: (line) => console.error(line),
      signal: interrupt.signal
    })
    const summary = Summary.summarize({
      profileName,
      profile: chosen,
      target: stack.description,
      baseUrl: stack.baseUrl,
      durationScale,
      result
    })
    console.log(Summary.render(summary))
    if (values["summary-export"] !== undefined) {
      writeFileSync(values["summary-export"], `${JSON.stringify(summary, null, 2)}\n`)
    }
    if (interrupt.signal.aborted) return 130
    return summary.ok ? 0 : 99
  } finally {
    await stack.stop()
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
