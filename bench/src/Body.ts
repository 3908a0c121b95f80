/**
 * The job every benchmark posts: a 314-byte JSON object shaped like the seed's jobs (a vendor, a
 * company with stray whitespace, PII for the cleaner, a nested query), so parsing, storing and
 * cleaning see a realistic payload.
 */

/**
 * The body of `POST /jobs`, exactly 314 bytes.
 */
export const jobBody =
  '{"vendor":"sync","company":"  Acme Corp  ","contact":"jane.doe@example.com","phone":"+1-555-0100",' +
  '"reference":"bench-0000001","query":{"type":"company_profile","fields":["name","address","employees",' +
  '"revenue","industry"],"country":"US"},"notes":"  please enrich this record with latest public data  ",' +
  '"priority":3}'

/**
 * The payload as an object, for BullMQ's `add`.
 */
export const jobPayload: Record<string, unknown> = JSON.parse(jobBody) as Record<string, unknown>
