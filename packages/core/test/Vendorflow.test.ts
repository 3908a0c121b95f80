/**
 * The embedded engine in one piece: the Promise facade and `Vendorflow.layer` run a job of a vendor
 * made with `defineVendor`, against a real HTTP server, to a complete and cleaned result; what
 * cannot work is a rejection that says why.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import * as Backend from "../src/Backend.ts"
import * as JobService from "../src/JobService.ts"
import { defineVendor } from "../src/VendorDefinition.ts"
import * as Vendorflow from "../src/Vendorflow.ts"

// The vendor: answers every lookup with the company it was asked about and a contact's e-mail.
const listening = async (): Promise<{ readonly url: string; readonly server: Server }> => {
  const server = createServer((request, response) => {
    let body = ""
    request.on("data", (chunk: Buffer) => (body += chunk.toString()))
    request.on("end", () => {
      const { company } = JSON.parse(body) as { company: string }
      response.writeHead(200, { "content-type": "application/json" })
      response.end(JSON.stringify({ data: { company: `  ${company}  `, contact: "jane@example.com" } }))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server }
}

const lookup = (url: string) =>
  defineVendor({
    name: "lookup",
    mode: "sync",
    url,
    request: (call) => ({ path: "/lookup", body: { company: call.payload["company"] ?? null } }),
    response: Schema.Struct({ data: Schema.Struct({ company: Schema.String, contact: Schema.String }) }),
    result: ({ data }) => data
  })

const cleaned = { company: "Acme", contact: "[REDACTED]" }

describe("createVendorflow", () => {
  it("runs a defined vendor's job to a complete, cleaned result on the memory backend", async () => {
    const { url, server } = await listening()
    const vf = await Vendorflow.createVendorflow({ vendors: [lookup(url)] })
    try {
      const job = await vf.submit({ company: "Acme" })
      assert.strictEqual(job.status, "pending")
      const done = await vf.waitFor(job.id)
      assert.strictEqual(done.status, "complete")
      assert.deepStrictEqual(done.result, cleaned)
      assert.deepStrictEqual((await vf.get(job.id)).result, cleaned)
    } finally {
      await vf.close()
      server.close()
    }
  })

  it("rejects with the engine's error: an unknown vendor, an id that names no job", async () => {
    const vf = await Vendorflow.createVendorflow({ vendors: [lookup("http://127.0.0.1:1")], backend: Backend.memory })
    try {
      const unknown: unknown = await vf.submit({}, { vendor: "nope" }).catch((error: unknown) => error)
      assert.include(unknown, { _tag: "UnknownVendor" })
      for (const id of ["not-a-job-id", crypto.randomUUID()]) {
        const missing: unknown = await vf.get(id).catch((error: unknown) => error)
        assert.include(missing, { _tag: "JobNotFound", message: `no job with id ${id}` })
      }
    } finally {
      await vf.close()
    }
  })

  it("rejects at start with why a vendor cannot be built", async () => {
    const needsKey = defineVendor({
      name: "keyed-lookup",
      mode: "sync",
      secrets: ["API_KEY"],
      url: "http://127.0.0.1:1",
      request: (call) => ({ path: "/lookup", headers: { "x-key": call.secret("API_KEY") } }),
      response: Schema.Json,
      result: (answer) => answer
    })
    const error: unknown = await Vendorflow.createVendorflow({ vendors: [needsKey] }).catch((e: unknown) => e)
    assert.include(error, {
      _tag: "InvalidDefinition",
      message: "keyed-lookup needs the secret API_KEY (VENDOR_KEYED_LOOKUP_API_KEY)"
    })
  })
})

describe("Vendorflow.layer", () => {
  it.live("is the whole engine as one layer providing JobService", () =>
    Effect.gen(function* () {
      const { url, server } = yield* Effect.promise(listening)
      yield* Effect.addFinalizer(() => Effect.sync(() => server.close()))
      const done = yield* Effect.gen(function* () {
        const jobs = yield* JobService.JobService
        const job = yield* jobs.submit({ payload: { company: "Acme" } })
        return yield* jobs.awaitFinished(job.id)
      }).pipe(Effect.provide(Vendorflow.layer({ vendors: [lookup(url)] })))
      assert.strictEqual(done.status, "complete")
      assert.deepStrictEqual(done.result, cleaned)
    }).pipe(Effect.scoped)
  )
})
