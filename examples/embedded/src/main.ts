/**
 * Embedding vendorflow in a plain Node app, with no Effect in sight: no server, no Redis, no
 * MongoDB.
 *
 * The app defines its own vendor with `defineVendor` (a company lookup, served here by a tiny HTTP
 * server so the example runs anywhere), starts the engine with the Promise facade on the memory
 * backend, submits a few jobs and waits for their cleaned results.
 */
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { createVendorflow, defineVendor } from "@vendorflow/core"
import { Schema } from "effect"

// The vendor's side: answers POST /companies with what it knows, some of it personal data.
const vendorServer = createServer((request, response) => {
  let body = ""
  request.on("data", (chunk: Buffer) => (body += chunk.toString()))
  request.on("end", () => {
    const { name } = JSON.parse(body) as { name: string }
    response.writeHead(200, { "content-type": "application/json" })
    response.end(JSON.stringify({ company: { name: `  ${name}  `, employees: 120, contact: `ceo@${name}.example` } }))
  })
})
await new Promise<void>((resolve) => vendorServer.listen(0, "127.0.0.1", resolve))
const vendorUrl = `http://127.0.0.1:${(vendorServer.address() as AddressInfo).port}`

// Our side: how a job becomes the vendor's request, what a good answer is, what the result keeps.
const companies = defineVendor({
  name: "companies",
  mode: "sync",
  url: vendorUrl,
  request: (call) => ({ path: "/companies", body: { name: call.payload["company"] ?? null } }),
  response: Schema.Struct({
    company: Schema.Struct({ name: Schema.String, employees: Schema.Number, contact: Schema.String })
  }),
  result: ({ company }) => company,
  defaults: { rateLimit: "20/1s" }
})

const vf = await createVendorflow({ vendors: [companies] })
try {
  const submitted = await Promise.all(["acme", "globex", "initech"].map((company) => vf.submit({ company })))
  const finished = await Promise.all(submitted.map((job) => vf.waitFor(job.id)))
  for (const job of finished) {
    console.log(job.id, job.status, JSON.stringify(job.result))
    if (job.status !== "complete") throw new Error(`job ${job.id} ended ${job.status}`)
    if (JSON.stringify(job.result).includes("@")) throw new Error(`job ${job.id} kept an e-mail address`)
  }
  console.log(`all ${finished.length} jobs complete, results cleaned`)
} finally {
  await vf.close()
  vendorServer.close()
}
