/**
 * Webhook security: signing and verifying vendor callbacks, refusing replays, and the per-job
 * callback token.
 *
 * - Signatures: HMAC-SHA256 over `<timestamp>.<raw body>`, carried in one header as
 *   `t=<unix seconds>,v1=<hex digest>`, compared in constant time, refused outside a tolerance
 *   (5 minutes by default). {@link hmacSha256} is that scheme as a {@link Scheme} value, the shape a
 *   vendor with its own signing convention implements.
 * - Replays: a {@link ReplayGuard} remembers each applied delivery's signature for as long as it
 *   could still pass the tolerance, so the same signed delivery is applied once. A signature is
 *   remembered only once its callback was applied: a delivery that failed (the store was down) may
 *   come again byte for byte and be applied then. {@link makeMemoryReplayGuard}
 *   is one process's memory; a deployment with several server processes needs a shared one (e.g.
 *   Redis `SET key 1 NX EX ttl`) provided as the {@link ReplayGuard} service.
 * - Callback tokens: {@link callbackToken} is an HMAC of the job id and its run under a server
 *   secret, appended to the webhook URL ({@link withCallbackToken}); {@link verifyCallbackToken}
 *   checks it against the job as it stands, so a leaked URL can complete neither another job nor
 *   the run an operator's retry started.
 *
 * Receiving a callback, which uses all three, is the `Webhook` module's.
 *
 * Layers: `ReplayGuard.layerMemory`.
 *
 * @since 0.1.0
 */
import { createHmac, timingSafeEqual } from "node:crypto"
import { Clock, Config, Context, Effect, Layer, Redacted, Schema } from "effect"

/**
 * The header that carries the signature.
 *
 * @category constants
 */
export const header = "x-vendorflow-signature"

/**
 * How old a signed timestamp may be by default (5 minutes), either way.
 *
 * @category constants
 */
export const defaultToleranceSeconds = 300

const digest = (secret: string, timestamp: number, body: string): string =>
  createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex")

/**
 * The header value for `body`, signed at `timestamp` (unix seconds).
 *
 * @category signing
 */
export const sign = (options: { readonly secret: string; readonly body: string; readonly timestamp: number }): string =>
  `t=${options.timestamp},v1=${digest(options.secret, options.timestamp, options.body)}`

/**
 * The result of {@link verify}.
 *
 * @category verifying
 */
export type Verification = "valid" | "missing" | "malformed" | "stale" | "mismatch"

/**
 * Checks a signature header against the raw body.
 *
 * @category verifying
 */
export const verify = (options: {
  readonly secret: string
  readonly body: string
  readonly header: string | undefined
  readonly nowSeconds?: number | undefined
  readonly toleranceSeconds?: number | undefined
}): Verification => {
  if (options.header === undefined || options.header === "") return "missing"
  const parts = new Map(
    options.header.split(",").map((part) => {
      const at = part.indexOf("=")
      return [part.slice(0, at).trim(), part.slice(at + 1).trim()] as const
    })
  )
  const timestamp = Number(parts.get("t"))
  const given = parts.get("v1")
  if (!Number.isSafeInteger(timestamp) || given === undefined || !/^[0-9a-f]{64}$/.test(given)) return "malformed"
  const now = options.nowSeconds ?? Math.floor(Date.now() / 1000)
  if (Math.abs(now - timestamp) > (options.toleranceSeconds ?? defaultToleranceSeconds)) return "stale"
  const expected = Buffer.from(digest(options.secret, timestamp, options.body), "hex")
  return timingSafeEqual(expected, Buffer.from(given, "hex")) ? "valid" : "mismatch"
}

/**
 * A vendor's signing convention: which header carries the signature, how a delivery is signed (the
 * simulator and tests need it) and how one is checked. {@link hmacSha256} is ours.
 *
 * @category signing
 */
export interface Scheme {
  /** Lower case, as Node hands headers over. */
  readonly header: string
  readonly sign: (options: { readonly secret: string; readonly body: string; readonly timestamp: number }) => string
  readonly verify: (options: {
    readonly secret: string
    readonly body: string
    readonly header: string | undefined
    readonly nowSeconds?: number | undefined
    readonly toleranceSeconds?: number | undefined
  }) => Verification
}

/**
 * The default scheme: {@link sign} and {@link verify} in the {@link header} header.
 *
 * @category signing
 */
export const hmacSha256: Scheme = { header, sign, verify }

/**
 * Remembers signed deliveries: `claim` answers true the first time it sees `key` and false for a
 * repeat within `ttlSeconds`; `seen` tells whether `key` is claimed, without claiming it.
 *
 * @category replay
 */
export class ReplayGuard extends Context.Service<
  ReplayGuard,
  {
    readonly claim: (key: string, ttlSeconds: number) => Effect.Effect<boolean>
    readonly seen: (key: string) => Effect.Effect<boolean>
  }
>()("@vendorflow/core/WebhookSignature/ReplayGuard") {
  /** One process's memory (see {@link makeMemoryReplayGuard}). */
  static readonly layerMemory: Layer.Layer<ReplayGuard> = Layer.sync(ReplayGuard, () => makeMemoryReplayGuard())
}

/**
 * How many signatures a memory guard keeps at most; past it the oldest are forgotten first, so a
 * flood of valid deliveries costs bounded memory (and only the oldest could then be replayed).
 *
 * @category replay
 */
export const defaultReplayCapacity = 100_000

/**
 * A {@link ReplayGuard} in this process's memory: right for one server process, not for several
 * behind a load balancer (each would accept the replay once).
 *
 * @category replay
 */
export const makeMemoryReplayGuard = (
  options: { readonly capacity?: number | undefined } = {}
): ReplayGuard["Service"] => {
  const capacity = options.capacity ?? defaultReplayCapacity
  // Key -> expiry (ms). Insertion order is arrival order, close enough to expiry order to prune from the front.
  const claimed = new Map<string, number>()
  const isClaimed = (key: string, now: number) => (claimed.get(key) ?? 0) > now
  return {
    claim: (key, ttlSeconds) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        for (const [oldest, expiry] of claimed) {
          if (expiry > now && claimed.size < capacity) break
          claimed.delete(oldest)
        }
        if (isClaimed(key, now)) return false
        claimed.set(key, now + ttlSeconds * 1000)
        return true
      }),
    seen: (key) => Effect.map(Clock.currentTimeMillis, (now) => isClaimed(key, now))
  }
}

/**
 * How long a signature must be remembered: it passes the tolerance while its timestamp is within
 * `toleranceSeconds` of now, and that timestamp may itself be up to `toleranceSeconds` ahead.
 *
 * @category replay
 */
export const replayWindowSeconds = (toleranceSeconds: number = defaultToleranceSeconds): number => 2 * toleranceSeconds

/**
 * The query parameter of the webhook URL that carries the callback token.
 *
 * @category callback tokens
 */
export const callbackTokenParam = "token"

const tokenDigest = (secret: string, jobId: string, run: number): string =>
  createHmac("sha256", secret).update(`vendorflow-callback-run\n${jobId}\n${run}`).digest("base64url")

/**
 * The token for one run of one job: `<run>.<HMAC-SHA256(secret, job id + run)>`. Every call of the
 * run carries the same token: an async vendor's answer to any of them is the job's answer.
 *
 * @category callback tokens
 */
export const callbackToken = (options: {
  readonly secret: string
  readonly jobId: string
  readonly run: number
}): string => `${options.run}.${tokenDigest(options.secret, options.jobId, options.run)}`

/**
 * The result of {@link verifyCallbackToken}. `earlier-run`: a genuine token of this job from a run
 * before an operator's retry, so the callback answers a call the job no longer waits for.
 *
 * @category callback tokens
 */
export type TokenVerification = "valid" | "missing" | "malformed" | "mismatch" | "earlier-run"

/**
 * Checks a callback token against the job it claims to answer and the run the job is in now.
 *
 * @category callback tokens
 */
export const verifyCallbackToken = (options: {
  readonly secret: string
  readonly token: string | undefined
  readonly jobId: string
  /** The job's current run (`Job.run`). */
  readonly run: number
}): TokenVerification => {
  if (options.token === undefined || options.token === "") return "missing"
  const match = /^(\d{1,9})\.([A-Za-z0-9_-]{43})$/.exec(options.token)
  if (match === null) return "malformed"
  const run = Number(match[1])
  const expected = Buffer.from(tokenDigest(options.secret, options.jobId, run), "base64url")
  if (!timingSafeEqual(expected, Buffer.from(match[2] ?? "", "base64url"))) return "mismatch"
  if (run < options.run) return "earlier-run"
  // Tokens are made only for the run a job is in: a later one is not this job's (one that expired
  // and was submitted again under the same idempotency key starts at run 1).
  return run === options.run ? "valid" : "mismatch"
}

/**
 * `webhookUrl` with the token appended as `?token=` (or `&token=` when it has a query already).
 *
 * @category callback tokens
 */
export const withCallbackToken = (webhookUrl: string, token: string): string => {
  const url = new URL(webhookUrl)
  url.searchParams.set(callbackTokenParam, token)
  return url.toString()
}

/**
 * The token in a webhook URL (or in a request's path and query), if any.
 *
 * @category callback tokens
 */
export const callbackTokenOf = (url: string): string | undefined =>
  new URL(url, "http://localhost").searchParams.get(callbackTokenParam) ?? undefined

/**
 * Whether this process runs in production: `NODE_ENV=production` (as the image sets it). There the
 * development defaults of secrets are refused.
 *
 * @category secrets
 */
export const productionConfig: Config.Config<boolean> = Config.String("NODE_ENV").pipe(
  Config.withDefault(""),
  Config.map((env) => env === "production")
)

/**
 * A secret left at its development default (unset, or set to the default) in production.
 *
 * @category secrets
 */
export class DevelopmentSecret extends Schema.TaggedError<DevelopmentSecret>()("DevelopmentSecret", {
  setting: Schema.String
}) {
  override get message(): string {
    return `${this.setting} is the development default (unset, or set to it); with NODE_ENV=production set a secret of your own`
  }
}

/**
 * The callback-token secret of a development setup, used when `CALLBACK_TOKEN_SECRET` is unset;
 * refused in production.
 *
 * @category callback tokens
 */
export const defaultCallbackSecret = "vendorflow-dev-callback-secret"

/**
 * The server secret callback tokens are made with: `CALLBACK_TOKEN_SECRET`, the one place it is
 * read. Every process that makes or checks tokens (workers and servers) must share it. With
 * `NODE_ENV=production` the development default fails with {@link DevelopmentSecret}, which stops
 * start-up with one line naming the variable.
 *
 * @category callback tokens
 */
export const callbackSecret: Effect.Effect<
  Redacted.Redacted<string>,
  Config.ConfigError | DevelopmentSecret
> = Effect.gen(function* () {
  const secret = yield* Config.Redacted("CALLBACK_TOKEN_SECRET").pipe(
    Config.withDefault(Redacted.make(defaultCallbackSecret))
  )
  if ((yield* productionConfig) && Redacted.value(secret) === defaultCallbackSecret) {
    return yield* new DevelopmentSecret({ setting: "CALLBACK_TOKEN_SECRET" })
  }
  return secret
})
