/**
 * SQLite: `POST /jobs` on `vendorflow-server` with its jobs and queue in one SQLite file against
 * the Fastify floor (Fastify + `HSET` + `XADD`), and the all-in-one end to end (submit a batch of
 * jobs, wait until none is pending or processing) on SQLite against the same on memory, in the
 * same run. Short rounds: what it shows is the cost of the file against memory and the floor.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { request } from "undici"
import { Stats } from "@vendorflow/dev-stack"
import * as Bench from "./Bench.ts"
import { jobBody } from "./Body.ts"
import { seedJobs } from "./Ingest.ts"
import * as Stack from "./Stack.ts"

/**
 * What the SQLite scenarios measured.
 */
export interface Result {
  readonly post: { readonly vendorflow: Bench.Measured; readonly floor: Bench.Measured }
  readonly endToEnd: {
    readonly jobs: number
    readonly sqlite: Stats.Summary
    readonly memory: Stats.Summary
  }
}

const busy = async (url: string): Promise<boolean> => {
  for (const status of ["pending", "processing"]) {
    const answer = await request(`${url}/jobs?status=${status}&limit=1`)
    const page = (await answer.body.json()) as { readonly jobs: ReadonlyArray<unknown> }
    if (page.jobs.length > 0) return true
  }
  return false
}

/** Posts `jobs` jobs and waits until none is unfinished; jobs per second from the first POST. */
const endToEnd = async (url: string, jobs: number): Promise<number> => {
  const started = performance.now()
  await seedJobs(url, jobs)
  while (await busy(url)) await new Promise((resolve) => setTimeout(resolve, 50))
  return jobs / ((performance.now() - started) / 1000)
}

/**
 * Runs both comparisons; the database files are removed at the end.
 */
export const run = async (context: Bench.Context, options: { readonly jobs: number }): Promise<Result> => {
  const folder = mkdtempSync(join(tmpdir(), "vendorflow-bench-sqlite-"))
  try {
    context.log("POST /jobs: vendorflow-server (SQLite file) vs Fastify + HSET + XADD")
    const server = await Stack.vendorflowServer(context.env, {
      name: "server-sqlite",
      prefix: undefined,
      sqlitePath: join(folder, "server.db")
    })
    const floorPrefix = Bench.randomPrefix("floor-sqlite")
    const floor = await Stack.floor(context.env, { name: "floor-redis-sqlite", prefix: floorPrefix })
    const poster = (url: string) => (seconds: number) =>
      context.generator.run({
        baseUrl: url,
        mix: { _tag: "post", path: "/jobs", body: jobBody },
        connections: context.connections,
        seconds
      })
    const [vendorflow, floorMeasured] = await Bench.compare(context, [
      { name: "vendorflow POST /jobs (SQLite)", procs: [server.process], run: poster(server.url) },
      {
        name: "floor POST /jobs",
        procs: [floor.process],
        before: Bench.clean(context, floorPrefix),
        run: poster(floor.url)
      }
    ])
    await Stack.stop(server.process, floor.process)
    await Bench.clean(context, floorPrefix)()

    context.log(`all-in-one end to end, ${options.jobs} jobs a round: SQLite file vs memory`)
    const onFile = await Stack.allInOne(context.env, { name: "all-in-one-sqlite", sqlitePath: join(folder, "all.db") })
    const sqliteUrl = onFile.url
    const memory = await Stack.allInOne(context.env, { name: "all-in-one-memory", sqlitePath: ":memory:" })
    const rates = { sqlite: [] as Array<number>, memory: [] as Array<number> }
    await endToEnd(sqliteUrl, Math.min(500, options.jobs))
    await endToEnd(memory.url, Math.min(500, options.jobs))
    for (let round = 0; round < context.rounds; round++) {
      const order = round % 2 === 0 ? (["sqlite", "memory"] as const) : (["memory", "sqlite"] as const)
      for (const which of order) {
        const rate = await endToEnd(which === "sqlite" ? sqliteUrl : memory.url, options.jobs)
        rates[which].push(rate)
        context.log(`  round ${round + 1} all-in-one on ${which}: ${rate.toFixed(0)} jobs/s`)
      }
    }
    await Stack.stop(onFile.process, memory.process)
    return {
      post: { vendorflow: vendorflow!, floor: floorMeasured! },
      endToEnd: { jobs: options.jobs, sqlite: Stats.summarize(rates.sqlite), memory: Stats.summarize(rates.memory) }
    }
  } finally {
    rmSync(folder, { recursive: true, force: true })
  }
}
