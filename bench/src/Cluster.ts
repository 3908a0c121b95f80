/**
 * End to end on a local Redis Cluster against the same on one Redis, in one run: our server and
 * workers (`REDIS_CLUSTER=true`) on three primaries with a replica each, all on this machine, and
 * the same processes on the bench's one Redis, through the mock sync vendor at 0 ms. On a machine
 * with a few cores the cluster cannot be faster (its six servers and the replication share the
 * cores with everything else); the ratio shows what the cluster client, sharded job store and
 * replication cost per job.
 */
import { RedisKeys } from "@vendorflow/redis"
import { Cluster, Redis } from "ioredis"
import { Effect } from "effect"
import * as Bench from "./Bench.ts"
import * as EndToEnd from "./EndToEnd.ts"
import * as Stack from "./Stack.ts"

/**
 * What the comparison measured.
 */
export interface Result {
  readonly jobs: number
  readonly workers: number
  readonly single: EndToEnd.Measured
  readonly cluster: EndToEnd.Measured
  /**
   * Per primary, the one that holds the vendor's slot (its queue, and its share of the job store's
   * shards) first: the CPU µs it spent per job over the cluster's rounds (warm-up included), and
   * how many of the job store's shards it holds.
   */
  readonly primaries: ReadonlyArray<{ readonly microsPerJob: number; readonly storeShards: number }>
}

/**
 * Starts the cluster and both deployments, compares them over `jobs` jobs a round, and stops them.
 */
export const run = async (
  context: Bench.Context,
  options: { readonly jobs: number; readonly workers: number; readonly concurrency: number }
): Promise<Result> => {
  const cluster = await Stack.redisCluster()
  const mock = await Stack.mockSync(context.env, { name: "mock-sync-cluster", latency: "0" })
  const clusterEnv = { ...context.env, redisUrl: cluster.url, extra: { ...context.env.extra, REDIS_CLUSTER: "true" } }
  const deploy = async (env: Stack.Env, name: string, prefix: string) => {
    const server = await Stack.vendorflowServer(env, { name: `server-${name}`, prefix, mockUrl: mock.url })
    const workers = await Stack.vendorflowWorkers(env, {
      name: `worker-${name}`,
      n: options.workers,
      prefix,
      mockUrl: mock.url,
      publicUrl: server.url,
      vars: { VENDOR_SYNC_CONCURRENCY: String(options.concurrency) }
    })
    return { server, procs: [server.process, ...workers] }
  }
  const singlePrefix = Bench.randomPrefix("single")
  const clusterPrefix = Bench.randomPrefix("cluster")
  const single = await deploy(context.env, "single", singlePrefix)
  const clustered = await deploy(clusterEnv, "cluster", clusterPrefix)
  // The job store's finished jobs, summed over its shards, through a cluster client of the bench's.
  const client = new Cluster(cluster.ports.map((port) => ({ host: "127.0.0.1", port })))
  const shards = Array.from({ length: RedisKeys.jobShards.cluster }, (_, shard) =>
    RedisKeys.jobShardKeys(clusterPrefix, shard)
  )
  const finished = async (status: "complete" | "failed") =>
    (await Promise.all(shards.map((shard) => client.zcard(shard.indexes(status)[0])))).reduce((a, b) => a + b, 0)
  const vendorShard = await Effect.runPromise(cluster.primaryOf(RedisKeys.vendor(clusterPrefix, "sync").stream))
  const primaries = await Promise.all(
    cluster.ports.map(async (port) => {
      const node = new Redis({ port, lazyConnect: false })
      return { port, node, role: (await node.info("replication")).includes("role:master") }
    })
  )
  const shardHolders = await Promise.all(shards.map((shard) => Effect.runPromise(cluster.primaryOf(shard.overdue))))
  const cpuBefore = await Promise.all(primaries.map(({ node }) => Bench.redisCpu(node)))
  const [onOne, onCluster] = await EndToEnd.compare(
    context,
    [
      EndToEnd.vendorflow(context, {
        serverUrl: single.server.url,
        prefix: singlePrefix,
        procs: single.procs,
        name: "one Redis"
      }),
      EndToEnd.vendorflow(context, {
        serverUrl: clustered.server.url,
        prefix: clusterPrefix,
        procs: clustered.procs,
        name: "Redis Cluster",
        finished
      })
    ],
    options.jobs
  )
  const jobs = await finished("complete")
  const perJob = await Promise.all(
    primaries.map(async ({ node }, i) => ((await Bench.redisCpu(node)) - cpuBefore[i]!) * (1e6 / Math.max(1, jobs)))
  )
  const measuredPrimaries = primaries
    .map(({ port, role }, i) => ({
      port,
      role,
      microsPerJob: perJob[i]!,
      storeShards: shardHolders.filter((holder) => holder === port).length
    }))
    .filter(({ role }) => role)
    .sort((a, b) => Number(b.port === vendorShard) - Number(a.port === vendorShard))
    .map(({ microsPerJob, storeShards }) => ({ microsPerJob, storeShards }))
  context.log(
    `  cluster primaries' CPU per job (the vendor's first): ${measuredPrimaries
      .map(({ microsPerJob, storeShards }) => `${microsPerJob.toFixed(0)} µs (${storeShards} store shards)`)
      .join(", ")}`
  )
  for (const { node } of primaries) node.disconnect()
  client.disconnect()
  await Stack.stop(...clustered.procs, ...single.procs, mock.process)
  await Stack.dropKeys(context.env.redisUrl, singlePrefix)
  return {
    jobs: options.jobs,
    workers: options.workers,
    single: onOne!,
    cluster: onCluster!,
    primaries: measuredPrimaries
  }
}
