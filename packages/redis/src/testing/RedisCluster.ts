/**
 * A Redis Cluster of a test's own: three primaries and three replicas, each a `redis-server` on a
 * free port of 127.0.0.1 (see `RedisServer`), joined with `redis-cli --cluster create`. It gives
 * the seed URL to use with `REDIS_CLUSTER=true`, finds the primary that holds a key's slot, and
 * kills a primary (SIGKILL, as in a crash) and waits until its replica has taken over. Every node
 * is killed, by its pid, when the scope closes.
 *
 * {@link describeCluster} runs a block of tests on one such cluster, started for the block.
 *
 * Nodes time out after 1 s (`cluster-node-timeout`), so a failover takes a second or two, and a
 * replica takes over whatever its replication lag (`cluster-replica-validity-factor 0`).
 *
 * @since 0.2.0
 */
import { afterAll, describe } from "@effect/vitest"
import { execFile, spawnSync } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Duration, Effect, Exit, Schedule, Scope } from "effect"
import * as RedisServer from "./RedisServer.ts"

/**
 * Why a test can't start a cluster of its own, or `undefined` when it can.
 *
 * @category constants
 */
export const unavailable: string | undefined =
  RedisServer.unavailable ??
  (spawnSync("redis-cli", ["--version"]).status === 0 ? undefined : "skipped, no redis-cli binary on PATH")

/** `redis-cli` against one node; its output. */
const cli = (port: number, ...args: ReadonlyArray<string>) =>
  Effect.callback<string, Error>((resume) => {
    execFile("redis-cli", ["-p", String(port), ...args], { timeout: 5_000 }, (error, stdout) =>
      resume(error === null ? Effect.succeed(stdout) : Effect.fail(error))
    )
  })

/** One node as `CLUSTER NODES` describes it. */
interface Node {
  readonly port: number
  readonly primary: boolean
  readonly failed: boolean
  readonly slots: ReadonlyArray<readonly [number, number]>
}

const parseNodes = (text: string): ReadonlyArray<Node> =>
  text
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => {
      const [, address = "", flags = "", , , , , , ...ranges] = line.trim().split(" ")
      return {
        port: Number(address.split("@")[0]?.split(":")[1]),
        primary: flags.includes("master"),
        failed: flags.includes("fail"),
        slots: ranges
          .filter((range) => !range.startsWith("["))
          .map((range) => {
            const [from = "0", to = from] = range.split("-")
            return [Number(from), Number(to)] as const
          })
      }
    })

/**
 * Starts the six nodes and joins them; the cluster is ready (every slot served, every node aware
 * of the others) when this succeeds.
 *
 * @category constructors
 */
export const make = Effect.gen(function* () {
  const dir = mkdtempSync(join(tmpdir(), "vendorflow-cluster-"))
  yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
  const ports = new Set<number>()
  while (ports.size < 6) ports.add(yield* RedisServer.freeClusterPort)
  const nodes = yield* Effect.forEach(
    ports,
    (port) =>
      RedisServer.make({
        port,
        args: [
          "--cluster-enabled",
          "yes",
          "--cluster-config-file",
          join(dir, `nodes-${port}.conf`),
          "--cluster-node-timeout",
          "1000",
          "--cluster-replica-validity-factor",
          "0",
          "--dir",
          dir
        ]
      }).pipe(Effect.tap((node) => node.start)),
    { concurrency: "unbounded" }
  )
  const all = nodes.map((node) => node.port)
  yield* Effect.callback<void, Error>((resume) => {
    execFile(
      "redis-cli",
      ["--cluster", "create", ...all.map((port) => `127.0.0.1:${port}`), "--cluster-replicas", "1", "--cluster-yes"],
      { timeout: 20_000 },
      (error, stdout) =>
        resume(error === null ? Effect.void : Effect.fail(new Error(`redis-cli --cluster create: ${stdout}`)))
    )
  })
  const live = new Set(all)

  /** Succeeds once every live node says the cluster is ok (every slot served, as that node sees it). */
  const settled = Effect.suspend(() => Effect.forEach([...live], (port) => cli(port, "CLUSTER", "INFO"))).pipe(
    Effect.filterOrFail(
      (infos) => infos.every((info) => info.includes("cluster_state:ok")),
      () => new Error("cluster not ok yet")
    ),
    Effect.retry(Schedule.spaced("100 millis").pipe(Schedule.upTo({ duration: Duration.seconds(20) })))
  )
  yield* settled

  /** The live primary serving `slot`, as a live node sees it. */
  const primaryOfSlot = (slot: number) =>
    Effect.suspend(() => cli([...live][0]!, "CLUSTER", "NODES")).pipe(
      Effect.map(parseNodes),
      Effect.map(
        (known) =>
          known.find(
            (node) =>
              node.primary &&
              !node.failed &&
              live.has(node.port) &&
              node.slots.some(([from, to]) => slot >= from && slot <= to)
          )?.port
      )
    )

  const slotOf = (key: string) =>
    Effect.suspend(() => cli([...live][0]!, "CLUSTER", "KEYSLOT", key)).pipe(Effect.map((text) => Number(text.trim())))

  return {
    /** The seed nodes, comma-separated, as `REDIS_URL` takes them with `REDIS_CLUSTER=true`. */
    url: all.map((port) => `redis://127.0.0.1:${port}`).join(","),
    ports: all,
    /** A command sent through a live node (`redis-cli -c` follows the redirects); its reply as printed. */
    command: (...args: ReadonlyArray<string>) => Effect.suspend(() => cli([...live][0]!, "-c", ...args)),
    /** The port of the primary that holds `key`'s slot. */
    primaryOf: (key: string) =>
      Effect.flatMap(slotOf(key), primaryOfSlot).pipe(
        Effect.flatMap((port) =>
          port === undefined ? Effect.fail(new Error(`no primary for ${key}`)) : Effect.succeed(port)
        )
      ),
    /**
     * Kills (SIGKILL) the primary holding `key`'s slot, then waits until a replica serves the slot
     * and the cluster is ok again; returns the killed port, the new primary's, when the killed
     * process had exited (epoch ms: no write reached it later), and how long the failover took.
     */
    killPrimaryOf: (key: string) =>
      Effect.gen(function* () {
        const slot = yield* slotOf(key)
        const victim = yield* primaryOfSlot(slot)
        const node = nodes.find((candidate) => candidate.port === victim)
        if (node === undefined) return yield* Effect.fail(new Error(`no live primary for ${key}`))
        const started = Date.now()
        yield* node.kill
        const killedAt = Date.now()
        live.delete(node.port)
        const successor = yield* primaryOfSlot(slot).pipe(
          Effect.filterOrFail(
            (port): port is number => port !== undefined,
            () => new Error("no replica has taken over yet")
          ),
          Effect.retry(Schedule.spaced("100 millis").pipe(Schedule.upTo({ duration: Duration.seconds(20) })))
        )
        yield* settled
        return { killed: node.port, successor, killedAt, failoverMillis: Date.now() - started }
      })
  }
})

/**
 * A running cluster, as {@link make} gives it.
 *
 * @category models
 */
export type RedisCluster = Effect.Success<typeof make>

/**
 * A block of tests on a cluster of its own, started by the first test that asks for it (`body`
 * gets it as an effect) and stopped once the block is done. Where `redis-server` or `redis-cli` is
 * missing, the block is named after the reason and skipped.
 *
 * @category constructors
 */
export const describeCluster = (name: string, body: (cluster: Effect.Effect<RedisCluster>) => void): void => {
  describe(`${name}`, () => {
    describe.skipIf(unavailable !== undefined)(
      `${unavailable ?? "on a local cluster of 3 primaries, 3 replicas"}`,
      () => {
        const scope = Effect.runSync(Scope.make())
        let started: Promise<RedisCluster> | undefined
        afterAll(() => Effect.runPromise(Scope.close(scope, Exit.void)))
        body(Effect.promise(() => (started ??= Effect.runPromise(Scope.provide(scope)(make)))))
      }
    )
  })
}
