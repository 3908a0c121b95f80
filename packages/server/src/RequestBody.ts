/**
 * Reading a request's body within the body limit (`MAX_BODY_BYTES`): a declared `content-length`
 * over the limit is refused before a byte is read, and a chunked body is cut off as soon as it
 * passes it, so no endpoint buffers more than the limit. Bytes that are not UTF-8 are refused
 * rather than turned into replacement characters in a stored payload.
 *
 * @since 0.1.0
 */
import { Api } from "@vendorflow/core"
import { ByteSize, Config, Effect, Result } from "effect"
import { type HttpServerError, HttpIncomingMessage, type HttpServerRequest } from "effect/http"

/**
 * The largest request body accepted by default: 1 MiB.
 *
 * @category config
 */
export const defaultMaxBodyBytes = 1024 * 1024

/**
 * The body limit from `MAX_BODY_BYTES` (bytes, default 1 MiB).
 *
 * @category config
 */
export const maxBodyBytesConfig: Config.Config<number> = Config.Int("MAX_BODY_BYTES").pipe(
  Config.withDefault(defaultMaxBodyBytes)
)

/**
 * The problem for a body over the limit.
 *
 * @category problems
 */
export const tooLarge = (maxBodyBytes: number): Api.PayloadTooLarge =>
  new Api.PayloadTooLarge({ detail: `The body is larger than ${maxBodyBytes} bytes.`, max_bytes: maxBodyBytes })

const isBodyTooLarge = (error: HttpServerError.HttpServerError): boolean =>
  error.reason._tag === "RequestParseError" && error.reason.reason === "BodyTooLarge"

/**
 * Reads the body's bytes, at most `maxBodyBytes`.
 *
 * @category reading
 */
export const readBytes = (
  request: HttpServerRequest.HttpServerRequest,
  maxBodyBytes: number
): Effect.Effect<Uint8Array, Api.PayloadTooLarge | Api.MalformedJson> => {
  const declared = Number(request.headers["content-length"])
  if (declared > maxBodyBytes) return Effect.fail(tooLarge(maxBodyBytes))
  return request.arrayBuffer.pipe(
    Effect.provideService(HttpIncomingMessage.MaxBodySize, ByteSize.bytes(maxBodyBytes)),
    Effect.mapError((error) =>
      isBodyTooLarge(error) ? tooLarge(maxBodyBytes) : new Api.MalformedJson({ detail: "The body could not be read." })
    ),
    Effect.map((bytes) => new Uint8Array(bytes))
  )
}

/**
 * Reads the body as text, at most `maxBodyBytes`.
 *
 * @category reading
 */
export const readText = (request: HttpServerRequest.HttpServerRequest, maxBodyBytes: number) =>
  Effect.flatMap(readBytes(request, maxBodyBytes), (bytes) => Effect.fromResult(decodeUtf8(bytes)))

const utf8 = new TextDecoder("utf-8", { fatal: true })

/**
 * A body's bytes as text, or a 400 when they are not UTF-8.
 *
 * @category reading
 */
export const decodeUtf8 = (bytes: Uint8Array): Result.Result<string, Api.MalformedJson> =>
  Result.try({
    try: () => utf8.decode(bytes),
    catch: () => new Api.MalformedJson({ detail: "The body is not valid UTF-8." })
  })
