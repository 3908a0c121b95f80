/**
 * `npm run bench`: starts everything it needs on loopback (our server and workers on Redis under a
 * random prefix, the mock sync vendor, the Fastify floor, BullMQ's workers), runs each scenario
 * with a warm-up and several rounds, and prints one table with medians, spreads, the machine and
 * the ratio of every figure to its baseline from the same invocation. Results go to
 * `bench/results/<date>.json`; the run's keys are deleted at the end.
 *
 *     npm run bench                          # everything but the soak
 *     npm run bench -- --soak                # and the 10-minute soak
 *     npm run bench -- --only=ingest,e2e     # some: post, get, noio (ingest = all three), e2e, cluster, scenario, ratelimit, sqlite, soak
 *     npm run bench -- --profile             # CPU profiles of every process, one per hot path
 *     npm run bench -- --quick               # a smoke run: short rounds, fewer jobs
 *
 * Options: `--rounds=3`, `--seconds=8` (per round), `--warmup=3`, `--connections=100`,
 * `--workers=2` (worker processes end to end and in the scenario),
 * `--e2e-jobs=10000`, `--sqlite-jobs=2000` (a round of the all-in-one end to end on SQLite and memory), `--bullmq-concurrency=100` (also our workers' `VENDOR_SYNC_CONCURRENCY` end to end), `--rate-limit=50`, `--rate-hidden=40`, `--rate-drop-after=20`, `--rate-workers=3`, `--rate-seconds=8`,
 * `--scenario-connections=200`, `--soak-minutes=10`, `--soak-rate=100` (jobs a second, each posted and read back), `--no-io` / `--no-no-io`
 * (the framework-only comparison, on by default), `--generator=wrk|undici`, `--redis-url=<url>`
 * (default `REDIS_URL` or redis://127.0.0.1:6379), `--env=K=V` (repeatable: extra environment for
 * our server and workers, for tuning), `--variant-env=K=V` (repeatable: a second server with these
 * settings too, measured beside the first in the POST and GET rounds and held to the same targets;
 * default `SERVER_PROCESSES=2`, the API as two processes on one port;
 * `--variant-env=HOT_PATH=false` for a before and after in one run; `none` for no second server),
 * `--out=<file>`.
 */
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { parseArgs } from "node:util"
import { Queue } from "bullmq"
import { request } from "undici"
import { type Stack as DevStack, Stats, Wrk } from "@vendorflow/dev-stack"
import * as Bench from "./src/Bench.ts"
import { jobBody } from "./src/Body.ts"
import * as Cluster from "./src/Cluster.ts"
import * as EndToEnd from "./src/EndToEnd.ts"
import * as Ingest from "./src/Ingest.ts"
import * as Machine from "./src/Machine.ts"
import * as Profile from "./src/Profile.ts"
import * as RateLimit from "./src/RateLimit.ts"
import * as Report from "./src/Report.ts"
import * as Soak from "./src/Soak.ts"
import * as Sqlite from "./src/Sqlite.ts"
import * as Stack from "./src/Stack.ts"

const scenarios = ["post", "get", "noio", "e2e", "cluster", "scenario", "ratelimit", "sqlite", "soak"] as const
type Scenario = (typeof scenarios)[number]

const { values } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    soak: { type: "boolean", default: false },
    profile: { type: "boolean", default: false },
    only: { type: "string" },
    rounds: { type: "string" },
    seconds: { type: "string" },
    warmup: { type: "string" },
    connections: { type: "string", default: "100" },
    workers: { type: "string", default: "2" },
    "e2e-jobs": { type: "string" },
    "sqlite-jobs": { type: "string" },
    "bullmq-concurrency": { type: "string", default: "100" },
    "rate-limit": { type: "string", default: "50" },
    "rate-hidden": { type: "string", default: "40" },
    "rate-drop-after": { type: "string" },
    "rate-workers": { type: "string", default: "3" },
    "rate-seconds": { type: "string" },
    "scenario-connections": { type: "string", default: "200" },
    "soak-minutes": { type: "string", default: "10" },
    "soak-rate": { type: "string", default: "100" },
    "no-io": { type: "boolean", default: true },
    "no-no-io": { type: "boolean", default: false },
    generator: { type: "string" },
    "redis-url": { type: "string", default: process.env["REDIS_URL"] ?? "redis://127.0.0.1:6379" },
    env: { type: "string", multiple: true, default: [] },
    "variant-env": { type: "string", multiple: true, default: ["SERVER_PROCESSES=2"] },
    out: { type: "string" },
    help: { type: "boolean", default: false }
  },
  strict: true
})

if (values.help) {
  console.log("usage: npm run bench -- [--soak] [--quick] [--profile] [--only=ingest,e2e,scenario,ratelimit] [...]")
  console.log("see bench/run.ts for every option")
  process.exit(0)
}

const number = (name: string, text: string | undefined, fallback: number): number => {
  if (text === undefined) return fallback
  const value = Number(text)
  if (!(value > 0)) throw new Error(`--${name} must be a positive number, not ${text}`)
  return value
}

const quick = values.quick
// `ingest` stands for post, get and noio.
const selected = new Set<Scenario>(
  values.only === undefined
    ? scenarios.filter((name) => name !== "soak" || values.soak)
    : values.only.split(",").flatMap((name): Array<Scenario> => {
        if (name === "ingest") return ["post", "get", "noio"]
        if (!(scenarios as ReadonlyArray<string>).includes(name)) throw new Error(`--only: no scenario ${name}`)
        return [name as Scenario]
      })
)
const settings = {
  rounds: number("rounds", values.rounds, quick ? 2 : 3),
  seconds: number("seconds", values.seconds, quick ? 3 : 8),
  warmupSeconds: number("warmup", values.warmup, quick ? 2 : 3),
  connections: number("connections", values.connections, 100),
  workers: number("workers", values.workers, 2),
  e2eJobs: number("e2e-jobs", values["e2e-jobs"], quick ? 3000 : 10_000),
  sqliteJobs: number("sqlite-jobs", values["sqlite-jobs"], quick ? 500 : 2000),
  bullmqConcurrency: number("bullmq-concurrency", values["bullmq-concurrency"], 100),
  rateLimit: number("rate-limit", values["rate-limit"], 50),
  rateWorkers: number("rate-workers", values["rate-workers"], 3),
  rateSeconds: number("rate-seconds", values["rate-seconds"], quick ? 5 : 8),
  rateHidden: number("rate-hidden", values["rate-hidden"], 40),
  rateDropAfter: number("rate-drop-after", values["rate-drop-after"], quick ? 15 : 20),
  scenarioConnections: number("scenario-connections", values["scenario-connections"], 200),
  soakMinutes: number("soak-minutes", values["soak-minutes"], 10),
  soakRate: number("soak-rate", values["soak-rate"], 100),
  noIo: selected.has("noio") && values["no-io"] && !values["no-no-io"]
}
const pairs = (flag: string, list: ReadonlyArray<string>): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const pair of list) {
    const at = pair.indexOf("=")
    if (at <= 0) throw new Error(`--${flag} expects K=V, not ${pair}`)
    out[pair.slice(0, at)] = pair.slice(at + 1)
  }
  return out
}
const extra = pairs("env", values.env)
const variantEnv = pairs(
  "variant-env",
  values["variant-env"].filter((pair) => pair !== "none")
)

const generator = Wrk.pick({
  force: values.generator === "wrk" || values.generator === "undici" ? values.generator : undefined,
  threads: 2
})
const startedAt = new Date()
const stamp = startedAt.toISOString().replace(/:/g, "").replace(/\..*$/, "")
const resultsDir = Stack.repoPath("bench/results")
const profileDir = values.profile ? join(resultsDir, "profiles", stamp) : undefined
if (profileDir !== undefined) mkdirSync(profileDir, { recursive: true })
const logDir = mkdtempSync(join(tmpdir(), "vendorflow-bench-"))
const redis = Stack.redisClient(values["redis-url"])
const machine = Machine.describe(Machine.redisVersion(await redis.info("server")), generator.name)

const log = (line: string) => console.log(`[${((performance.now() / 1000) | 0).toString().padStart(4)} s] ${line}`)
const context: Bench.Context = {
  env: { redisUrl: values["redis-url"], logDir, profileDir, extra },
  generator,
  rounds: settings.rounds,
  seconds: settings.seconds,
  warmupSeconds: settings.warmupSeconds,
  connections: settings.connections,
  redis,
  log,
  memory: []
}

log(`machine: ${Machine.line(machine)}`)
log(`at start: ${Machine.uptimeLine()}`)
log(`process logs in ${logDir}${profileDir === undefined ? "" : `; CPU profiles in ${profileDir}`}`)
if (Object.keys(extra).length > 0) log(`extra environment for server and workers: ${JSON.stringify(extra)}`)

const prefix = Bench.randomPrefix("vf")
const bullPrefix = Bench.randomPrefix("bull").replace(/:$/, "")
const results: {
  ingest?: Ingest.Result
  endToEnd?: EndToEnd.Result
  cluster?: Cluster.Result
  scenario?: { readonly measured: Bench.Measured; readonly connections: number }
  rateLimit?: RateLimit.Result
  sqlite?: Sqlite.Result
  soak?: Soak.Result
} = {}

// One server for every scenario, so its memory can be followed from one to the next; with
// --profile every hot path gets a server process of its own, so that each profile is one path.
// (The server never calls a vendor; the mock's URL only keeps its configuration complete.)
let server: DevStack.Server | undefined
const serverFor = async (phase: string, mockUrl?: string): Promise<DevStack.Server> => {
  if (server !== undefined && !values.profile) return server
  if (server !== undefined) await Stack.stop(server.process)
  server = await Stack.vendorflowServer(context.env, {
    name: values.profile ? `server-${phase}` : "server",
    prefix,
    mockUrl
  })
  await new Promise((resolve) => setTimeout(resolve, 500))
  Bench.recordMemory(context, "idle", [server.process])
  return server
}

try {
  if (selected.has("post") || selected.has("get") || settings.noIo) {
    log("== ingest")
    const ingestServer = await serverFor("ingest")
    let variant: Ingest.Variant | undefined
    if (Object.keys(variantEnv).length > 0) {
      const variantPrefix = Bench.randomPrefix("variant")
      const name = Object.entries(variantEnv)
        .map(([key, value]) => `${key}=${value}`)
        .join(" ")
      const variantServer = await Stack.vendorflowServer(
        { ...context.env, extra: { ...extra, ...variantEnv } },
        { name: "server-variant", prefix: variantPrefix }
      )
      variant = { name, server: variantServer, prefix: variantPrefix }
    }
    const ingest = await Ingest.run(context, {
      variant,
      server: ingestServer,
      serverPrefix: prefix,
      post: selected.has("post"),
      get: selected.has("get"),
      noIo: settings.noIo
    })
    results.ingest = ingest.result
    await Stack.dropKeys(values["redis-url"], prefix)
    if (variant !== undefined) {
      await Stack.stop(variant.server.process)
      await Stack.dropKeys(values["redis-url"], variant.prefix)
    }
  }

  if (selected.has("e2e")) {
    log(`== end to end (${settings.workers} worker processes each, ${settings.e2eJobs} jobs a round)`)
    const mock = await Stack.mockSync(context.env, { name: "mock-sync-0ms", latency: "0" })
    const e2eServer = await serverFor("e2e", mock.url)
    // As many jobs at once per worker process as each BullMQ worker runs (its `concurrency`).
    const workers = await Stack.vendorflowWorkers(context.env, {
      name: "worker-e2e",
      n: settings.workers,
      prefix,
      mockUrl: mock.url,
      publicUrl: e2eServer.url,
      vars: { VENDOR_SYNC_CONCURRENCY: String(settings.bullmqConcurrency) }
    })
    Bench.recordMemory(context, "idle", workers)
    const queueName = "bench"
    const bullWorkers = await Stack.bullmqWorkers(context.env, {
      name: "bullmq-worker",
      n: settings.workers,
      prefix: bullPrefix,
      queue: queueName,
      concurrency: settings.bullmqConcurrency,
      mockUrl: mock.url
    })
    const bullServer = await Stack.bullmqServer(context.env, {
      name: "bullmq-server",
      prefix: bullPrefix,
      queue: queueName
    })
    const library = await Stack.vendorflowLibrary(context.env, { prefix, mockUrl: mock.url })
    const redisUrl = new URL(values["redis-url"])
    const queue = new Queue(queueName, {
      connection: { host: redisUrl.hostname, port: Number(redisUrl.port || "6379") },
      prefix: bullPrefix
    })
    const clearArrivals = async () => {
      await request(`${mock.url}/arrivals`, { method: "DELETE" }).then((answer) => answer.body.dump())
    }
    const [vendorflow, fastifyBullmq, vendorflowLibrary, bullmq] = await EndToEnd.compare(
      context,
      [
        EndToEnd.vendorflow(context, { serverUrl: e2eServer.url, prefix, procs: [e2eServer.process, ...workers] }),
        EndToEnd.fastifyBullmq({ serverUrl: bullServer.url, queue, procs: [bullServer.process, ...bullWorkers] }),
        EndToEnd.vendorflowLibrary(context, { submit: library.submit, prefix, procs: workers }),
        EndToEnd.bullmq({ queue, procs: bullWorkers })
      ].map((subject) => ({ ...subject, before: clearArrivals })),
      settings.e2eJobs
    )
    const ceiling: Array<{ readonly rps: number; readonly machineMicrosPerCall: number }> = []
    await EndToEnd.undiciCeiling(mock.url, settings.warmupSeconds)
    for (let round = 0; round < settings.rounds; round++) {
      await clearArrivals()
      const measured = await EndToEnd.undiciCeiling(mock.url, settings.seconds)
      ceiling.push(measured)
      log(
        `  round ${round + 1} undici ceiling: ${measured.rps.toFixed(0)} req/s, ` +
          `machine ${measured.machineMicrosPerCall.toFixed(0)} µs per call`
      )
    }
    await clearArrivals()
    results.endToEnd = {
      jobs: settings.e2eJobs,
      workers: settings.workers,
      vendorflow: vendorflow!,
      fastifyBullmq: fastifyBullmq!,
      library: vendorflowLibrary!,
      bullmq: bullmq!,
      bullmqConcurrency: settings.bullmqConcurrency,
      undiciCeiling: {
        rps: Stats.summarize(ceiling.map((round) => round.rps)),
        inFlight: 100,
        machineMicrosPerCall: Stats.median(ceiling.map((round) => round.machineMicrosPerCall))
      }
    }
    Bench.recordMemory(context, "after end to end", [e2eServer.process, ...workers, bullServer.process, ...bullWorkers])
    await library.close()
    await queue.obliterate({ force: true })
    await queue.close()
    await Stack.stop(...workers, ...bullWorkers, bullServer.process)
    await Stack.stop(mock.process)
    await Stack.dropKeys(values["redis-url"], prefix)
    await Stack.dropKeys(values["redis-url"], bullPrefix)
  }

  if (selected.has("cluster")) {
    // A fifth of the end-to-end jobs a round: the row is a ratio, and the cluster's startup and
    // two deployments already cost time.
    const jobs = Math.max(500, Math.round(settings.e2eJobs / 5))
    log(
      `== end to end on a local Redis Cluster vs one Redis (${settings.workers} worker processes each, ${jobs} jobs a round)`
    )
    results.cluster = await Cluster.run(context, {
      jobs,
      workers: settings.workers,
      concurrency: settings.bullmqConcurrency
    })
  }

  if (selected.has("scenario")) {
    log(`== original scenario (${settings.scenarioConnections} clients, POST then GET, mock at its default 100-500 ms)`)
    const mock = await Stack.mockSync(context.env, { name: "mock-sync-default", latency: "100-500" })
    const scenarioServer = await serverFor("scenario", mock.url)
    const workers = await Stack.vendorflowWorkers(context.env, {
      name: "worker-scenario",
      n: settings.workers,
      prefix,
      mockUrl: mock.url,
      publicUrl: scenarioServer.url
    })
    const [measured] = await Bench.compare(context, [
      {
        name: "scenario",
        procs: [scenarioServer.process],
        run: (seconds) =>
          generator.run({
            baseUrl: scenarioServer.url,
            mix: { _tag: "scenario", postPath: "/jobs", getPrefix: "/jobs/", body: jobBody },
            connections: settings.scenarioConnections,
            seconds
          })
      }
    ])
    results.scenario = { measured: measured!, connections: settings.scenarioConnections }
    Bench.recordMemory(context, "after scenario", [scenarioServer.process, ...workers])
    await Stack.stop(...workers)
    await Stack.stop(mock.process)
    await Stack.dropKeys(values["redis-url"], prefix)
  }

  if (server !== undefined) await Stack.stop(server.process)

  if (selected.has("ratelimit")) {
    log(`== rate limits (${settings.rateWorkers} worker processes)`)
    results.rateLimit = await RateLimit.run(context, {
      limit: settings.rateLimit,
      hidden: settings.rateHidden,
      workers: settings.rateWorkers,
      seconds: settings.rateSeconds,
      dropAfter: settings.rateDropAfter
    })
  }

  if (selected.has("sqlite")) {
    log("== SQLite")
    results.sqlite = await Sqlite.run(context, { jobs: settings.sqliteJobs })
  }

  if (selected.has("soak")) {
    log(`== soak (${settings.soakMinutes} min at ${settings.soakRate} jobs/s)`)
    results.soak = await Soak.run(context, {
      minutes: settings.soakMinutes,
      rate: settings.soakRate,
      workers: settings.workers
    })
  }
} finally {
  await Stack.stopAll()
  await Stack.dropKeys(values["redis-url"], prefix)
  await Stack.dropKeys(values["redis-url"], bullPrefix)
}

const finishedAt = new Date()
const table = Report.table(results)
const memory = Report.memoryTable(context.memory)
const profiles =
  profileDir === undefined
    ? []
    : readdirSync(profileDir).flatMap((file) => {
        if (!file.endsWith(".cpuprofile")) return []
        const summary = Profile.summarize(join(profileDir, file))
        return [{ name: file.replace(/\.cpuprofile$/, ""), summary }]
      })

const out = values.out ?? join(resultsDir, `${stamp}.json`)
writeFileSync(
  out,
  JSON.stringify(
    {
      startedAt: startedAt.toISOString(),
      finishedAt: finishedAt.toISOString(),
      machine,
      settings: { ...settings, extra },
      results,
      memory: context.memory,
      table,
      memoryTable: memory,
      profiles: profiles.map(({ name, summary }) => ({ name, ...summary }))
    },
    null,
    2
  ) + "\n"
)
if (profileDir !== undefined) {
  writeFileSync(
    join(profileDir, "summary.md"),
    profiles.map(({ name, summary }) => Profile.toMarkdown(summary, name)).join("\n")
  )
}

console.log("")
console.log(`Machine: ${Machine.line(machine)}`)
console.log(
  `Settings: ${settings.rounds} rounds of ${settings.seconds} s after a ${settings.warmupSeconds} s warm-up, ` +
    `${settings.connections} connections; medians, ± half the min-max spread; ratios against baselines from this run (of stacks that took turns, round by round).`
)
console.log("")
console.log(table)
console.log("")
console.log(memory)
console.log("")
console.log(`took ${((finishedAt.getTime() - startedAt.getTime()) / 60_000).toFixed(1)} min; results in ${out}`)
if (profileDir !== undefined) console.log(`CPU profiles and their summary in ${profileDir}`)
redis.disconnect()
