/**
 * The cursor of `GET /jobs`: a store position (`updatedAt`, `id`) as the opaque string clients pass
 * back, and the query parameter that refuses one we did not issue. Re-exported by `Api`.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import * as Job from "../Job.ts"
import type * as JobStore from "../JobStore.ts"

/**
 * A store cursor as the opaque string clients pass back.
 *
 * @category cursors
 */
export const encodeCursor = (cursor: JobStore.Cursor): string =>
  Buffer.from(JSON.stringify([cursor.updatedAt, cursor.id])).toString("base64url")

const CursorJson = Schema.fromJsonString(Schema.Tuple([Job.IsoTimestamp, Job.JobId]))

/**
 * The store cursor a client passed back; `undefined` when it is not one of ours (then the request
 * was refused by {@link Cursor} before it got here).
 *
 * @category cursors
 */
export const decodeCursor = (text: string): JobStore.Cursor | undefined => {
  const decoded = Schema.decodeUnknownOption(CursorJson)(Buffer.from(text, "base64url").toString("utf8"))
  return decoded._tag === "Some" ? { updatedAt: decoded.value[0], id: decoded.value[1] } : undefined
}

/**
 * The `cursor` query parameter: a string that {@link decodeCursor} reads, so a forged or damaged
 * cursor is a 400 before any store sees it.
 *
 * @category cursors
 */
export const Cursor = Schema.String.check(
  Schema.makeFilter((text: string) => decodeCursor(text) !== undefined, {
    expected: "the next_cursor of a previous page"
  })
)
