/**
 * The job every benchmark posts: a 314-byte JSON object shaped like the seed's jobs (a vendor, a
 * company with stray whitespace, PII for the cleaner, a nested query), so parsing, storing and
 * cleaning see a realistic payload.
 */

import type { Job } from "@vendorflow/core"
import type { Pool } from "undici"

/**
 * The body of `POST /jobs`, exactly 314 bytes.
 */
export const jobBody =
  '{"vendor":"sync","company":"  Acme Corp  ","contact":"jane.doe@example.com","phone":"+1-555-0100",' +
  '"reference":"bench-0000001","query":{"type":"company_profile","fields":["name","address","employees",' +
  '"revenue","industry"],"country":"US"},"notes":"  please enrich this record with latest public data  ",' +
  '"priority":3}'

/**
 * The payload as an object, for BullMQ's `add` and our library's `submit`.
 */
export const jobPayload: Job.JsonObject = JSON.parse(jobBody) as Job.JsonObject

/**
 * Posts the job to `/jobs` on `pool`; returns the job's id, or throws with the answer when it was
 * not 200.
 */
export const postJob = async (pool: Pool): Promise<string> => {
  const answer = await pool.request({
    method: "POST",
    path: "/jobs",
    headers: { "content-type": "application/json" },
    body: jobBody
  })
  const text = await answer.body.text()
  if (answer.statusCode !== 200) throw new Error(`POST /jobs answered ${answer.statusCode}: ${text}`)
  return (JSON.parse(text) as { readonly request_id: string }).request_id
}
