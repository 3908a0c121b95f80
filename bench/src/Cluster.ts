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
   * CPU µs each primary spent per job over the cluster's rounds (warm-up included): the one that
   * holds the vendor's slot (its queue, and its share of the job store's shards), then the others.
   */
  readonly primaryMicrosPerJob: { readonly vendorShard: number; readonly others: ReadonlyArray<number> }
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
  const primaryMicrosPerJob = {
    vendorShard: perJob[primaries.findIndex(({ port }) => port === vendorShard)] ?? 0,
    others: primaries.flatMap(({ port, role }, i) => (role && port !== vendorShard ? [perJob[i]!] : []))
  }
  context.log(
    `  cluster primaries' CPU per job: ${primaryMicrosPerJob.vendorShard.toFixed(0)} µs on the one holding the vendor's slot, ` +
      `${primaryMicrosPerJob.others.map((micros) => micros.toFixed(0)).join(" and ")} µs on the others`
  )
  for (const { node } of primaries) node.disconnect()
  client.disconnect()
  await Stack.stop(...clustered.procs, ...single.procs, mock.process)
  await Stack.dropKeys(context.env.redisUrl, singlePrefix)
  return { jobs: options.jobs, workers: options.workers, single: onOne!, cluster: onCluster!, primaryMicrosPerJob }
}
