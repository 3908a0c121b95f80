/**
 * Signing and verifying vendor webhooks: HMAC-SHA256 over `<timestamp>.<raw body>`, carried in one
 * header as `t=<unix seconds>,v1=<hex digest>`, compared in constant time, with a replay window.
 *
 * @since 0.1.0
 */
import { createHmac, timingSafeEqual } from "node:crypto"

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
