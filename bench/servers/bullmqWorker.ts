/**
 * The BullMQ baseline's worker process: a BullMQ `Worker` whose processor makes the same HTTP call
 * our sync adapter makes (`POST <MOCK_SYNC_URL>/process` with `{job_id, payload}` and the job id as
 * `Idempotency-Key`, JSON answer read, its `data` cleaned by the same `clean` our worker runs and
 * returned, so BullMQ stores it as the job's result), on an undici pool with a connection per
 * concurrent job.
 *
 * Env: `REDIS_URL`, `BULLMQ_PREFIX`, `BULLMQ_QUEUE`, `BULLMQ_CONCURRENCY` (default 100),
 * `MOCK_SYNC_URL`. Prints `bullmq worker ready` once connected; closes on SIGTERM.
 */
import { Cleaner } from "@vendorflow/core"
import { Worker } from "bullmq"
import { Pool } from "undici"

const redisUrl = new URL(process.env["REDIS_URL"] ?? "redis://127.0.0.1:6379")
const concurrency = Number(process.env["BULLMQ_CONCURRENCY"] ?? "100")
const mockUrl = process.env["MOCK_SYNC_URL"] ?? "http://127.0.0.1:8001"
const pool = new Pool(mockUrl, { connections: concurrency })

const worker = new Worker(
  process.env["BULLMQ_QUEUE"] ?? "bench",
  async (job) => {
    const response = await pool.request({
      path: "/process",
      method: "POST",
      headers: { "content-type": "application/json", "idempotency-key": String(job.id) },
      body: JSON.stringify({ job_id: job.id, payload: job.data })
    })
    const answer = (await response.body.json()) as { readonly success?: boolean; readonly data?: unknown }
    if (response.statusCode !== 200 || answer.success !== true)
      throw new Error(`vendor answered ${response.statusCode}`)
    return Cleaner.clean(answer.data)
  },
  {
    connection: { host: redisUrl.hostname, port: Number(redisUrl.port || "6379") },
    prefix: process.env["BULLMQ_PREFIX"] ?? "vf-bench-bull",
    concurrency
  }
)
worker.on("error", (error) => console.error(`bullmq worker: ${error.message}`))
await worker.waitUntilReady()
console.log("bullmq worker ready")

const close = () => {
  void worker.close().then(async () => {
    await pool.close()
    process.exit(0)
  })
}
process.once("SIGTERM", close)
process.once("SIGINT", close)
