/**
 * Every Redis key this package uses, in one place, laid out so that it runs on Redis Cluster as on
 * one Redis: the keys of every script share one hash slot (the `{…}` part of a key, its hash tag,
 * is all Redis Cluster hashes to pick the slot).
 *
 * - Per vendor, tag `{v:<vendor>}`: its stream, delayed set and dead letters (the queue's scripts
 *   touch those together), its rate limit and its statistics buckets. One vendor's traffic stays in
 *   one slot, so on one shard: what its rate limit needs anyway, and vendors spread over the shards.
 * - Per job-store shard, tag `{j:<shard>}`: a job's hash, the listing indexes of each status and the
 *   overdue index of the jobs of that shard. A job's shard is a hash of its id modulo
 *   {@link jobShards}, so a transition (the job's hash and its index members) is one script in one
 *   slot; a batch is split by shard, and a listing reads every shard's index and merges.
 * - The workers' heartbeats, tag `{workers}`; the circuits (`circuit:<key>`), replay claims
 *   (`replay:<key>`) and `stats:since` are one key per command, so they need no tag.
 *
 * The shard count is part of the layout: every process must use the same, for the life of the data
 * (a job's hash is found by its shard).
 *
 * @since 0.2.0
 */

/**
 * The keys of one vendor: its queue's stream, delayed set and dead-letter stream, its rate limit's
 * state (pace, pause, learned limit) and in-flight leases, and its statistics bucket of a given
 * index.
 *
 * @category keys
 */
export const vendor = (prefix: string, name: string) => {
  const tag = `${prefix}{v:${name}}:`
  return {
    stream: `${tag}stream`,
    delayed: `${tag}delayed`,
    dead: `${tag}dead`,
    /** The rate limit's keys: `rate:state` (a hash) and `rate:slots` (a sorted set). */
    rate: (name: "state" | "slots"): string => `${tag}rate:${name}`,
    stats: (index: number): string => `${tag}stats:${index}`
  }
}

/**
 * How many shards the job store spreads its jobs over: 1 on one Redis (every listing is one seek),
 * 16 on Redis Cluster (enough to spread the jobs over the shards of a cluster of a few primaries;
 * a listing reads 16 indexes at once and merges them).
 *
 * @category constants
 */
export const jobShards = { single: 1, cluster: 16 } as const

/**
 * The shard of a job id among `shards`: FNV-1a of its characters, modulo `shards`.
 *
 * @category keys
 */
export const jobShard = (id: string, shards: number): number => {
  if (shards <= 1) return 0
  let hash = 0x811c9dc5
  for (let i = 0; i < id.length; i++) {
    hash ^= id.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193)
  }
  return (hash >>> 0) % shards
}

/**
 * The job store's keys of one shard: its jobs' hashes, the listing indexes of a status (in the
 * order `lua/jobIndexes.lua` gives them: all, by vendor, by owner, by owner and vendor) and the
 * overdue index.
 *
 * @category keys
 */
export const jobShardKeys = (prefix: string, shard: number) => {
  const tag = `${prefix}{j:${shard}}:`
  return {
    job: (id: string): string => `${tag}job:${id}`,
    indexes: (status: string) =>
      [
        `${tag}jobs:${status}`,
        `${tag}jobs:${status}:vendor`,
        `${tag}jobs:${status}:owner`,
        `${tag}jobs:${status}:owner-vendor`
      ] as const,
    overdue: `${tag}overdue`
  }
}

/**
 * The workers' heartbeats: a hash of each worker's last beat and a sorted set of when each beat.
 *
 * @category keys
 */
export const workers = (prefix: string) => ({
  beats: `${prefix}{workers}:beats`,
  seen: `${prefix}{workers}:seen`
})

/**
 * When the first process started recording statistics.
 *
 * @category keys
 */
export const statsSince = (prefix: string): string => `${prefix}stats:since`

/**
 * The prefix of the circuits' keys (`effect/persistence` appends the circuit's key).
 *
 * @category keys
 */
export const circuitPrefix = (prefix: string): string => `${prefix}circuit:`

/**
 * A webhook delivery's replay claim.
 *
 * @category keys
 */
export const replay = (prefix: string, key: string): string => `${prefix}replay:${key}`
