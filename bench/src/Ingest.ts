/**
 * Ingest: `POST /jobs` with the 314-byte body and `GET /jobs/{id}` on `vendorflow-server` (Redis
 * job store and queue, no workers running) against the hand-written floor doing the same work
 * (Fastify + `HSET` + `XADD`; Fastify + `HGET`), and, to show what the framework alone costs, the
 * same `POST` on both with no I/O (our server on its in-memory backends, Fastify answering at once).
 */
import { Pool } from "undici"
import type { Process, Stack as DevStack } from "@vendorflow/dev-stack"
import * as Bench from "./Bench.ts"
import { jobBody, postJob } from "./Body.ts"
import * as Stack from "./Stack.ts"

/**
 * What the ingest scenarios measured.
 */
export interface Result {
  readonly post?: { readonly vendorflow: Bench.Measured; readonly floor: Bench.Measured } | undefined
  readonly get?: { readonly vendorflow: Bench.Measured; readonly floor: Bench.Measured } | undefined
  /** Resident memory after the POST rounds, MiB: our server's (and the variant's) and the floor's. */
  readonly postRssMiB?:
    | { readonly vendorflow: number; readonly floor: number; readonly variant?: number | undefined }
    | undefined
  readonly postNoIo?: { readonly vendorflow: Bench.Measured; readonly floor: Bench.Measured } | undefined
  /** The same runs on a second server with other settings (`--variant-env`), for a before and after. */
  readonly variant?:
    | {
        readonly name: string
        readonly post?: Bench.Measured | undefined
        readonly get?: Bench.Measured | undefined
      }
    | undefined
}

/**
 * A second vendorflow server measured beside the first, e.g. with an optimisation turned off.
 */
export interface Variant {
  readonly name: string
  readonly server: DevStack.Server
  readonly prefix: string
}

/**
 * Posts `count` jobs, `inFlight` at a time, and returns their ids.
 */
export const seedJobs = async (baseUrl: string, count: number, inFlight = 100): Promise<Array<string>> => {
  const pool = new Pool(baseUrl, { connections: inFlight })
  const ids: Array<string> = []
  let next = 0
  const client = async () => {
    while (next < count) {
      next++
      ids.push(await postJob(pool))
    }
  }
  await Promise.all(Array.from({ length: inFlight }, client))
  await pool.close()
  return ids
}

const poster = (context: Bench.Context, url: string) => (seconds: number) =>
  context.generator.run({
    baseUrl: url,
    mix: { _tag: "post", path: "/jobs", body: jobBody },
    connections: context.connections,
    seconds
  })

/**
 * Runs the ingest comparisons. `server` is our server on Redis under `serverPrefix`.
 */
export const run = async (
  context: Bench.Context,
  options: {
    readonly server: DevStack.Server
    readonly serverPrefix: string
    readonly post: boolean
    readonly get: boolean
    readonly noIo: boolean
    readonly variant?: Variant | undefined
  }
): Promise<{ readonly result: Result; readonly procs: ReadonlyArray<Process.Running> }> => {
  const floorPrefix = Bench.randomPrefix("floor")
  const floor = await Stack.floor(context.env, { name: "floor-redis", prefix: floorPrefix })
  const procs: Array<Process.Running> = [options.server.process, floor.process]
  const variant = options.variant
  if (variant !== undefined) procs.push(variant.server.process)
  let variantPost: Bench.Measured | undefined
  let variantGet: Bench.Measured | undefined

  let post: Result["post"]
  let postRssMiB: Result["postRssMiB"]
  if (options.post) {
    context.log("POST /jobs: vendorflow-server (Redis) vs Fastify + HSET + XADD")
    const [postVendorflow, postFloor, postVariant] = await Bench.compare(context, [
      {
        name: "vendorflow POST /jobs",
        procs: [options.server.process],
        before: Bench.clean(context, options.serverPrefix),
        run: poster(context, options.server.url)
      },
      {
        name: "floor POST /jobs",
        procs: [floor.process],
        before: Bench.clean(context, floorPrefix),
        run: poster(context, floor.url)
      },
      ...(variant === undefined
        ? []
        : [
            {
              name: `vendorflow POST /jobs [${variant.name}]`,
              procs: [variant.server.process],
              before: Bench.clean(context, variant.prefix),
              run: poster(context, variant.server.url)
            }
          ])
    ])
    variantPost = postVariant
    Bench.recordMemory(context, "after POST /jobs", procs)
    const rssMiB = (proc: Process.Running) => (proc.rss() ?? Number.NaN) / 2 ** 20
    postRssMiB = {
      vendorflow: rssMiB(options.server.process),
      floor: rssMiB(floor.process),
      variant: variant === undefined ? undefined : rssMiB(variant.server.process)
    }
    post = { vendorflow: postVendorflow!, floor: postFloor! }
  }

  let get: Result["get"]
  if (options.get) {
    context.log("GET /jobs/{id}: vendorflow-server (Redis) vs Fastify + HGET")
    await Bench.clean(context, options.serverPrefix)()
    await Bench.clean(context, floorPrefix)()
    const seeded = 5000
    const [vendorflowIds, floorIds] = [await seedJobs(options.server.url, seeded), await seedJobs(floor.url, seeded)]
    if (variant !== undefined) await Bench.clean(context, variant.prefix)()
    const variantIds = variant === undefined ? [] : await seedJobs(variant.server.url, seeded)
    const getter = (url: string, ids: ReadonlyArray<string>) => (seconds: number) =>
      context.generator.run({
        baseUrl: url,
        mix: { _tag: "get", pathPrefix: "/jobs/", ids },
        connections: context.connections,
        seconds
      })
    const [getVendorflow, getFloor, getVariant] = await Bench.compare(context, [
      {
        name: "vendorflow GET /jobs/{id}",
        procs: [options.server.process],
        run: getter(options.server.url, vendorflowIds)
      },
      { name: "floor GET /jobs/{id}", procs: [floor.process], run: getter(floor.url, floorIds) },
      ...(variant === undefined
        ? []
        : [
            {
              name: `vendorflow GET /jobs/{id} [${variant.name}]`,
              procs: [variant.server.process],
              run: getter(variant.server.url, variantIds)
            }
          ])
    ])
    variantGet = getVariant
    Bench.recordMemory(context, "after GET /jobs/{id}", procs)
    get = { vendorflow: getVendorflow!, floor: getFloor! }
  }
  await Stack.stop(floor.process)
  await Bench.clean(context, floorPrefix)()

  let postNoIo: Result["postNoIo"]
  if (options.noIo) {
    context.log("POST /jobs without I/O: vendorflow-server (in-memory backends) vs Fastify alone")
    const memoryServer = await Stack.vendorflowServer(context.env, { name: "server-memory", prefix: undefined })
    const bareFloor = await Stack.floor(context.env, { name: "floor-bare", prefix: undefined })
    const [vendorflow, bare] = await Bench.compare(context, [
      { name: "vendorflow POST /jobs (memory)", procs: [memoryServer.process], run: poster(context, memoryServer.url) },
      { name: "Fastify POST /jobs (no I/O)", procs: [bareFloor.process], run: poster(context, bareFloor.url) }
    ])
    postNoIo = { vendorflow: vendorflow!, floor: bare! }
    await Stack.stop(memoryServer.process, bareFloor.process)
  }

  return {
    result: {
      post,
      postRssMiB,
      get,
      postNoIo,
      variant: variant === undefined ? undefined : { name: variant.name, post: variantPost, get: variantGet }
    },
    procs
  }
}
