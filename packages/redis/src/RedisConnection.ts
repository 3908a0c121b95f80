/**
 * Connections to Redis as Effect resources, on ioredis, shared by the job queue and the rate
 * limiter of one process.
 *
 * One client per role: a command connection that every short command and Lua script shares, and
 * a pool of dedicated connections for blocking reads, since an `XREADGROUP … BLOCK` on the shared
 * connection would hold up every command queued behind it.
 *
 * While Redis is down, commands fail at once with a typed error instead of queueing: no offline
 * queue, no per-request retries, and a per-command timeout for the case where the server stops
 * answering without closing the socket. Meanwhile the clients reconnect in the background with
 * capped, jittered exponential backoff, so everything works again by itself once Redis is back.
 *
 * Building the layer is the start-up check: it waits at most `connectTimeout` for the first
 * connection and otherwise fails with one {@link RedisConnectionError} naming the server (never its
 * credentials) and the last connection error.
 *
 * Commands sent on the command connection in one turn of the event loop leave in one write at its
 * end (see `redis`), except on `redisImmediate`, where each leaves at once.
 *
 * On Redis Cluster (`cluster`, `REDIS_CLUSTER=true`) every client is ioredis's `Cluster`, seeded
 * from the URL (one node or several, comma-separated), which follows the slots as they move and as
 * replicas take over; a turn's writes leave in one write per primary. ioredis's auto-pipelining
 * stays off: with it, commands in its pipelines came back MOVED under load, which a pipeline passes
 * on as errors instead of following. Every key layout here keeps a script's keys in one hash slot
 * (see `RedisKeys`).
 *
 * Layers: {@link layer}, {@link layerConfig} (`REDIS_URL`, `REDIS_PREFIX`, `REDIS_CLUSTER`), and {@link layerRedis}
 * and {@link layerRedisImmediate}, which offer `effect/persistence`'s `Redis` service over the same
 * connections.
 *
 * @since 0.1.0
 */
import { Clock, Config, Context, Deferred, Duration, Effect, Exit, Layer, Queue, Redacted, Schema } from "effect"
import { Redis } from "effect/persistence"
import { Cluster, Redis as IORedis, type RedisOptions } from "ioredis"

/**
 * A Redis connection failure: `InvalidUrl` (fix the configuration), `Unreachable` (no connection at
 * start-up) or `Unavailable` (a command failed or timed out while running).
 *
 * @category errors
 */
export class RedisConnectionError extends Schema.TaggedError<RedisConnectionError>()("RedisConnectionError", {
  reason: Schema.Literals(["InvalidUrl", "Unreachable", "Unavailable"]),
  message: Schema.String
}) {
  get isRetryable(): boolean {
    return this.reason !== "InvalidUrl"
  }
}

/**
 * How to reach Redis.
 *
 * @category models
 */
export interface Options {
  /**
   * `redis://[user:password@]host:port[/db]` or `rediss://…`; may hold a password. On a cluster, one
   * seed node or several, comma-separated (the credentials of the first apply to all).
   */
  readonly url: Redacted.Redacted<string> | string
  /** Whether the URL names Redis Cluster nodes; default false. */
  readonly cluster?: boolean | undefined
  /** Prefix of every key, default {@link defaultPrefix}. */
  readonly prefix?: string | undefined
  /** How long the start-up check waits for a first connection, default 3 seconds. */
  readonly connectTimeout?: Duration.Input | undefined
  /** How long a command on the shared connection may take, default 2 seconds. */
  readonly commandTimeout?: Duration.Input | undefined
  /** The longest pause between reconnect attempts, default 2 seconds. */
  readonly reconnectMaxDelay?: Duration.Input | undefined
  /**
   * Dedicated connections for blocking reads, at most; default 64. Each `take` that blocks holds one,
   * so keep it at or above the number of takes that block at once (a worker's consumer loops).
   */
  readonly maxBlockingConnections?: number | undefined
}

/**
 * The key prefix when none is configured.
 *
 * @category constants
 */
export const defaultPrefix = "vendorflow:"

/**
 * The connections of one process.
 *
 * @category services
 */
export class RedisConnection extends Context.Service<
  RedisConnection,
  {
    /** Prefix of every key, e.g. `vendorflow:`. */
    readonly prefix: string
    /** The server, without credentials, for logs and error messages. */
    readonly target: string
    /** Whether this is Redis Cluster, whose scripts must keep their keys in one hash slot. */
    readonly cluster: boolean
    /**
     * `effect/persistence`'s Redis service: `send`/`eval` on the command connection, `reserve` for
     * blocking reads. Commands sent in one turn of the event loop leave together at its end.
     */
    readonly redis: Redis.Redis["Service"]
    /**
     * The same connections, but a command leaves at once: for scripts whose timing matters more
     * than a system call, such as shared rate limits, which pace calls by the caller's clock.
     */
    readonly redisImmediate: Redis.Redis["Service"]
    /** How long a command may take; bounds waits around blocking reads too. */
    readonly commandTimeout: Duration.Duration
    /** One round trip to Redis, for readiness checks such as `/health`. */
    readonly ping: Effect.Effect<Duration.Duration, RedisConnectionError>
  }
>()("@vendorflow/redis/RedisConnection") {}

/**
 * The message of a Redis failure, for wrapping it in another error.
 *
 * @category utils
 */
export const causeMessage = (cause: unknown): string => {
  const inner = cause instanceof Redis.RedisError ? cause.cause : cause
  const message = inner instanceof Error ? inner.message : String(inner)
  // ioredis's wording for the two fail-fast cases names its options, not what happened.
  if (message.includes("enableOfflineQueue")) return "not connected (reconnecting)"
  if (message.includes("max retries per request")) return "connection lost while the command was running"
  return message
}

const parseUrl = (raw: string) =>
  Effect.try({
    try: () => new URL(raw),
    // The URL may carry a password, so the message never repeats it.
    catch: () =>
      new RedisConnectionError({
        reason: "InvalidUrl",
        message: "the Redis URL is not a URL; expected redis://[user:password@]host:port[/db]"
      })
  }).pipe(
    Effect.filterOrFail(
      (url) => url.protocol === "redis:" || url.protocol === "rediss:",
      (url) =>
        new RedisConnectionError({
          reason: "InvalidUrl",
          message: `the Redis URL has the scheme ${url.protocol}; expected redis: or rediss:`
        })
    )
  )

const describeUrl = (url: URL) =>
  `${url.protocol}//${url.hostname}:${url.port || "6379"}${url.pathname.length > 1 ? url.pathname : ""}`

/**
 * Holds a connection's writes until the end of the current turn of the event loop, so that the
 * commands issued meanwhile (by every request and job in flight) leave in one write instead of one
 * write each: under load each write was a system call, and those cost the server more CPU than all
 * of the rest of `POST /jobs` (see `docs/benchmarks.md`). Unlike ioredis's `enableAutoPipelining`
 * it never makes a command wait for the replies to earlier ones.
 */
const batchWrites = (connection: IORedis | Cluster) => {
  // The sockets of the connection, or on a cluster of its primaries, that are up. Only those:
  // before that ioredis queues nothing (no offline queue) and fails fast.
  const sockets = () =>
    (connection instanceof Cluster ? connection.nodes("master") : [connection]).flatMap((node) =>
      node.status === "ready" && node.stream !== undefined && node.stream.writable ? [node.stream] : []
    )
  let held: ReadonlyArray<IORedis["stream"]> | undefined
  const release = () => {
    const streams = held
    held = undefined
    // The sockets corked, even if ioredis has reconnected on others since.
    for (const stream of streams ?? []) if (stream.writableCorked > 0) stream.uncork()
  }
  return {
    /** Holds what is written from now until the end of this turn. */
    hold: () => {
      if (held !== undefined) return
      const streams = sockets()
      if (streams.length === 0) return
      held = streams
      for (const stream of streams) stream.cork()
      setImmediate(release)
    },
    /** Sends what is held now, so that the next command leaves at once. */
    release
  }
}

/**
 * Opens the connections; they close with the scope.
 *
 * @category constructors
 */
export const make = Effect.fnUntraced(function* (options: Options) {
  const url = Redacted.isRedacted(options.url) ? Redacted.value(options.url) : options.url
  const cluster = options.cluster === true
  const urls = yield* Effect.forEach(cluster ? url.split(",").map((one) => one.trim()) : [url], parseUrl)
  const target = urls.map(describeUrl).join(",")
  const prefix = options.prefix ?? defaultPrefix
  const connectTimeout = Duration.fromInputUnsafe(options.connectTimeout ?? "3 seconds")
  const commandTimeout = Duration.fromInputUnsafe(options.commandTimeout ?? "2 seconds")
  const reconnectMaxMillis = Duration.toMillis(Duration.fromInputUnsafe(options.reconnectMaxDelay ?? "2 seconds"))

  const base: RedisOptions = {
    // Fail fast while disconnected: nothing waits in a queue for a server that may not come back.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: Duration.toMillis(connectTimeout),
    // Jitter keeps a fleet of workers from reconnecting in lockstep after an outage.
    retryStrategy: (attempt) =>
      Math.round(Math.min(reconnectMaxMillis, 50 * 2 ** Math.min(attempt, 10)) * (0.5 + Math.random() / 2))
  }

  const seeds = urls.map((one) => ({ host: one.hostname, port: Number(one.port || "6379") }))
  const seed = urls[0]!
  /** A client: one connection, or on a cluster one to each primary, following the slots. */
  const open = (role: { readonly name: string; readonly lazy?: boolean; readonly commandTimeout?: number }) => {
    const nodeOptions = {
      maxRetriesPerRequest: 0,
      connectTimeout: base.connectTimeout,
      connectionName: role.name,
      lazyConnect: role.lazy === true,
      ...(role.commandTimeout === undefined ? {} : { commandTimeout: role.commandTimeout })
    }
    if (!cluster) return new IORedis(url, { ...base, ...nodeOptions })
    return new Cluster(seeds, {
      enableOfflineQueue: false,
      lazyConnect: role.lazy === true,
      clusterRetryStrategy: base.retryStrategy ?? null,
      redisOptions: {
        ...nodeOptions,
        ...(seed.username === "" ? {} : { username: decodeURIComponent(seed.username) }),
        ...(seed.password === "" ? {} : { password: decodeURIComponent(seed.password) }),
        ...(seed.protocol === "rediss:" ? { tls: {} } : {})
      }
    })
  }
  type Client = IORedis | Cluster

  let lastError: string | undefined
  const events = yield* Queue.unbounded<"ready" | "close">()
  const ready = yield* Deferred.make<void>()
  const client = yield* Effect.acquireRelease(
    Effect.sync(() => {
      const created = open({ name: "vendorflow-commands", commandTimeout: Duration.toMillis(commandTimeout) })
      // Listening stops ioredis from printing every failed attempt; the state changes are logged below.
      created.on("error", (error: Error) => {
        lastError = error.message
      })
      created.on("ready", () => {
        lastError = undefined
        Deferred.doneUnsafe(ready, Effect.void)
        Queue.offerUnsafe(events, "ready")
      })
      created.on("close", () => Queue.offerUnsafe(events, "close"))
      return created
    }),
    (created) => Effect.sync(() => created.disconnect())
  )

  yield* Deferred.await(ready).pipe(
    Effect.timeoutOrElse({
      duration: connectTimeout,
      orElse: () =>
        Effect.suspend(() =>
          Effect.fail(
            new RedisConnectionError({
              reason: "Unreachable",
              message: `cannot connect to Redis at ${target} within ${Duration.format(connectTimeout)}: ${
                lastError ?? "no answer from the server"
              }`
            })
          )
        )
    })
  )

  // One line when the connection drops and one when it is back, however many attempts lie between.
  let up = true
  yield* Queue.take(events).pipe(
    Effect.flatMap((event) => {
      if (event === "close" && up) {
        up = false
        return Effect.logWarning(
          `Redis at ${target}: connection lost${lastError === undefined ? "" : ` (${lastError})`}; reconnecting`
        )
      }
      if (event === "ready" && !up) {
        up = true
        return Effect.logInfo(`Redis at ${target}: connection restored`)
      }
      return Effect.void
    }),
    Effect.forever,
    Effect.forkScoped
  )

  const batches = new WeakMap<Client, ReturnType<typeof batchWrites>>()
  const batchOf = (connection: Client) => {
    const existing = batches.get(connection)
    if (existing !== undefined) return existing
    const created = batchWrites(connection)
    batches.set(connection, created)
    return created
  }

  // `immediate`: the command leaves at once (with whatever was held), for timing that matters.
  const sendWith = (connection: Client, immediate = false) => {
    const batch = batchOf(connection)
    return <A = unknown>(command: string, ...args: ReadonlyArray<string>) =>
      Effect.tryPromise({
        // ioredis types every reply as unknown; callers name the shape they expect.
        try: () => {
          if (immediate) batch.release()
          else batch.hold()
          // A script is loaded where its keys live, on any primary: so on all of them (and again
          // after a failover, when `EVALSHA` on a promoted replica says NOSCRIPT).
          if (connection instanceof Cluster && command === "SCRIPT" && args[0] === "LOAD") {
            return Promise.all(connection.nodes("master").map((node) => node.call(command, [...args]))).then(
              (shas) => shas[0] as A
            )
          }
          return connection.call(command, [...args]) as Promise<A>
        },
        catch: (cause) => new Redis.RedisError({ cause })
      })
  }

  const connectBlocking = Effect.gen(function* () {
    let blockingError = "connection closed"
    const connection = open({ name: "vendorflow-blocking", lazy: true })
    connection.on("error", (error: Error) => {
      blockingError = error.message
    })
    yield* Effect.tryPromise({
      try: () => connection.connect(),
      catch: () => new Redis.RedisError({ cause: new Error(blockingError) })
    }).pipe(
      Effect.timeoutOrElse({
        duration: connectTimeout,
        orElse: () => Effect.fail(new Redis.RedisError({ cause: new Error(`connect timed out (${blockingError})`) }))
      }),
      // A failed connection would otherwise keep reconnecting in the background.
      Effect.onExit((exit) => (Exit.isFailure(exit) ? Effect.sync(() => connection.disconnect()) : Effect.void))
    )
    return { send: sendWith(connection), close: Effect.sync(() => connection.disconnect()) }
  })

  const subscribe: Parameters<typeof Redis.make>[0]["subscribe"] = (channel, onMessage) =>
    Effect.gen(function* () {
      const ended = yield* Deferred.make<void, Redis.RedisError>()
      const subscriber = yield* Effect.acquireRelease(
        Effect.sync(() => {
          const created = open({ name: "vendorflow-subscriber", lazy: true })
          // Failures surface through `ended`; the listener only keeps ioredis from printing them.
          created.on("error", () => {})
          created.on("message", (from: string, message: string) => onMessage({ channel: from, message }))
          created.on("end", () =>
            Deferred.doneUnsafe(ended, Effect.fail(new Redis.RedisError({ cause: new Error("subscriber closed") })))
          )
          return created
        }),
        (created) => Effect.sync(() => created.disconnect())
      )
      yield* Effect.tryPromise({ try: () => subscriber.connect(), catch: (cause) => new Redis.RedisError({ cause }) })
      yield* Effect.tryPromise({
        try: () => subscriber.subscribe(channel),
        catch: (cause) => new Redis.RedisError({ cause })
      })
      return Deferred.await(ended)
    })

  const pool = { maxConnections: options.maxBlockingConnections ?? 64, idleTimeout: "60 seconds" } as const
  const redis = yield* Redis.make({ send: sendWith(client), connect: connectBlocking, pool, subscribe })
  const redisImmediate = yield* Redis.make({
    send: sendWith(client, true),
    connect: connectBlocking,
    pool,
    subscribe
  })

  const ping = Clock.currentTimeMillis.pipe(
    Effect.flatMap((start) =>
      redis.send("PING").pipe(
        Effect.andThen(Clock.currentTimeMillis),
        Effect.map((end) => Duration.millis(end - start))
      )
    ),
    Effect.mapError(
      (error) =>
        new RedisConnectionError({ reason: "Unavailable", message: `Redis at ${target}: ${causeMessage(error)}` })
    ),
    Effect.withSpan("RedisConnection.ping")
  )

  return RedisConnection.of({ prefix, target, cluster, redis, redisImmediate, commandTimeout, ping })
})

/**
 * The connections, opened when the layer is built and closed with it.
 *
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<RedisConnection, RedisConnectionError> =>
  Layer.effect(RedisConnection, make(options))

/**
 * The settings read by {@link layerConfig}: `REDIS_URL` (required, redacted), `REDIS_PREFIX` and
 * `REDIS_CLUSTER` (`true` when `REDIS_URL` names Redis Cluster nodes).
 *
 * @category config
 */
export const config: Config.Config<Options> = Config.all({
  url: Config.Redacted("REDIS_URL"),
  prefix: Config.String("REDIS_PREFIX").pipe(Config.withDefault(defaultPrefix)),
  cluster: Config.Boolean("REDIS_CLUSTER").pipe(Config.withDefault(false))
})

/**
 * The connections configured from the environment.
 *
 * @category layers
 */
export const layerConfig: Layer.Layer<RedisConnection, RedisConnectionError | Config.ConfigError> = Layer.effect(
  RedisConnection,
  Effect.flatMap(config, make)
)

/**
 * `effect/persistence`'s `Redis` service over these connections, for its stores.
 *
 * @category layers
 */
export const layerRedis: Layer.Layer<Redis.Redis, never, RedisConnection> = Layer.effect(
  Redis.Redis,
  RedisConnection.useSync((connection) => connection.redis)
)

/**
 * {@link layerRedis} whose commands leave at once rather than with the turn's others (see
 * `redisImmediate`), for stores whose timing matters, such as rate limits.
 *
 * @category layers
 */
export const layerRedisImmediate: Layer.Layer<Redis.Redis, never, RedisConnection> = Layer.effect(
  Redis.Redis,
  RedisConnection.useSync((connection) => connection.redisImmediate)
)
