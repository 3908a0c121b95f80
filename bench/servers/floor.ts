/**
 * The hand-written floor: the least a Node server can do for `POST /jobs` and `GET /jobs/{id}`.
 * Fastify (no logger, its own JSON body parser) with one ioredis client on auto-pipelining:
 *
 * - `POST /jobs`: parse the JSON body, check it is an object, make an id, `HSET` the job (its view
 *   as one JSON field, plus its status) and `XADD` its id to a stream, both sent at once; answer
 *   `{request_id}`.
 * - `GET /jobs/:id`: `HGET` the stored view and answer it as it is, or 404.
 *
 * With `FLOOR_REDIS=0` it does no I/O at all (the id is made and dropped, `GET` answers a fixed
 * view): the framework alone. Listens on `PORT` (0: any free port) at 127.0.0.1 and prints
 * `floor listening on http://…`. Keys go under `FLOOR_PREFIX`.
 */
import { randomUUID } from "node:crypto"
import Fastify from "fastify"
import { invalidPayload, isJobPayload } from "./payload.ts"
import { Redis } from "ioredis"

const port = Number(process.env["PORT"] ?? "0")
const prefix = process.env["FLOOR_PREFIX"] ?? "vf-bench-floor:"
const withRedis = process.env["FLOOR_REDIS"] !== "0"
const redis = withRedis
  ? new Redis(process.env["REDIS_URL"] ?? "redis://127.0.0.1:6379", { enableAutoPipelining: true })
  : undefined

const app = Fastify({ logger: false })

const fixedView = JSON.stringify({ request_id: randomUUID(), status: "pending", vendor: "sync" })

app.post("/jobs", async (request, reply) => {
  const payload = request.body
  if (!isJobPayload(payload)) return reply.code(422).send(invalidPayload)
  const id = randomUUID()
  if (redis !== undefined) {
    const now = new Date().toISOString()
    const view = {
      request_id: id,
      status: "pending",
      vendor: typeof payload["vendor"] === "string" ? payload["vendor"] : "sync",
      payload,
      attempts: 0,
      created_at: now,
      updated_at: now
    }
    await Promise.all([
      redis.hset(`${prefix}job:${id}`, "view", JSON.stringify(view), "status", "pending"),
      redis.xadd(`${prefix}stream`, "*", "jobId", id)
    ])
  }
  return { request_id: id }
})

app.get<{ Params: { id: string } }>("/jobs/:id", async (request, reply) => {
  const view = redis === undefined ? fixedView : await redis.hget(`${prefix}job:${request.params.id}`, "view")
  if (view === null) {
    reply.code(404)
    return { type: "job-not-found", status: 404 }
  }
  reply.header("content-type", "application/json; charset=utf-8")
  return view
})

const address = await app.listen({ port, host: "127.0.0.1" })
console.log(`floor listening on ${address}`)

const close = () => {
  void app.close().then(() => {
    redis?.disconnect()
    process.exit(0)
  })
}
process.once("SIGTERM", close)
process.once("SIGINT", close)
