/**
 * The service a competent Node team would write on BullMQ instead of vendorflow: Fastify (no
 * logger, its own JSON body parser) in front of one BullMQ `Queue`, the jobs run by
 * `bullmqWorker.ts` processes, whose processor makes the vendor call and returns the cleaned
 * answer, which BullMQ keeps as the job's return value.
 *
 * - `POST /jobs`: parse the JSON body, check it is an object, `queue.add` it under a UUID job id;
 *   answer `{request_id}`.
 * - `GET /jobs/:id`: the job's state and, once complete, its result (`{request_id, status,
 *   result}`), or 404.
 *
 * Env: `REDIS_URL`, `BULLMQ_PREFIX`, `BULLMQ_QUEUE`; listens on `PORT` (0: any free port) at
 * 127.0.0.1 and prints `bullmq server listening on http://…`.
 */
import { randomUUID } from "node:crypto"
import { Job, Queue } from "bullmq"
import Fastify from "fastify"
import { invalidPayload, isJobPayload } from "./payload.ts"

const port = Number(process.env["PORT"] ?? "0")
const redisUrl = new URL(process.env["REDIS_URL"] ?? "redis://127.0.0.1:6379")
const queue = new Queue(process.env["BULLMQ_QUEUE"] ?? "bench", {
  connection: { host: redisUrl.hostname, port: Number(redisUrl.port || "6379") },
  prefix: process.env["BULLMQ_PREFIX"] ?? "vf-bench-bull"
})

const app = Fastify({ logger: false })

app.post("/jobs", async (request, reply) => {
  const payload = request.body
  if (!isJobPayload(payload)) return reply.code(422).send(invalidPayload)
  const id = randomUUID()
  await queue.add("job", payload, { jobId: id })
  return { request_id: id }
})

app.get<{ Params: { id: string } }>("/jobs/:id", async (request, reply) => {
  const job = await Job.fromId(queue, request.params.id)
  if (job === undefined) {
    reply.code(404)
    return { type: "job-not-found", status: 404 }
  }
  const status = await job.getState()
  return { request_id: job.id, status, ...(status === "completed" ? { result: job.returnvalue } : {}) }
})

await queue.waitUntilReady()
const address = await app.listen({ port, host: "127.0.0.1" })
console.log(`bullmq server listening on ${address}`)

const close = () => {
  void app.close().then(async () => {
    await queue.close()
    process.exit(0)
  })
}
process.once("SIGTERM", close)
process.once("SIGINT", close)
