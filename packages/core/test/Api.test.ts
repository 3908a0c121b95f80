import { readFileSync } from "node:fs"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { HttpServerRespondable } from "effect/http"
import { OpenApi } from "effect/http-api"
import * as Api from "../src/Api.ts"
import * as Job from "../src/Job.ts"

const Wire = Schema.fromJsonString(
  Schema.Struct({ type: Schema.String, title: Schema.String, status: Schema.Number, detail: Schema.String })
)

const Package = Schema.fromJsonString(Schema.Struct({ version: Schema.String }))

describe("Api", () => {
  it("documents the package's version", () => {
    const pkg = Schema.decodeUnknownSync(Package)(readFileSync(new URL("../package.json", import.meta.url), "utf8"))
    assert.strictEqual(Api.version, pkg.version)
  })

  it.effect("every problem encodes as { type, title, status, detail } with its own type", () =>
    Effect.gen(function* () {
      const problems = [
        new Api.InvalidRequest({ detail: "d" }),
        new Api.MalformedJson({ detail: "d" }),
        new Api.MalformedWebhook({ detail: "d" }),
        new Api.InvalidSignature({ detail: "d" }),
        new Api.JobNotFound({ detail: "d", job_id: "x" }),
        new Api.VendorNotFound({ detail: "d", vendor: "v", known_vendors: [] }),
        new Api.RouteNotFound({ detail: "d" }),
        new Api.MethodNotAllowed({ detail: "d", allowed: ["GET"] }),
        new Api.PayloadTooLarge({ detail: "d", max_bytes: 1 }),
        new Api.UnsupportedMediaType({ detail: "d" }),
        new Api.InvalidPayload({ detail: "d" }),
        new Api.UnknownVendor({ detail: "d", vendor: "v", known_vendors: ["a"] }),
        new Api.InternalError({ detail: "d" }),
        new Api.ServiceUnavailable({ detail: "d", retry_after: 5 })
      ]
      const types = new Set<string>()
      for (const problem of problems) {
        const response = yield* HttpServerRespondable.toResponse(problem)
        assert.strictEqual(response.status, problem.status)
        assert.isAtLeast(problem.status, 400)
        if (response.body._tag !== "Uint8Array") return assert.fail(`${problem._tag} has no JSON body`)
        assert.strictEqual(response.body.contentType, "application/problem+json")
        const body = Schema.decodeUnknownSync(Wire)(new TextDecoder().decode(response.body.body))
        assert.strictEqual(body.type, problem.type)
        assert.isTrue(body.type.startsWith(Api.problemTypePrefix))
        assert.strictEqual(body.title, problem.title)
        assert.strictEqual(body.status, problem.status)
        assert.strictEqual(body.detail, "d")
        types.add(problem.type)
      }
      assert.strictEqual(types.size, problems.length)
    })
  )

  it("each endpoint lists the problems it can answer with", () => {
    const doc = OpenApi.fromApi(Api.Api)
    const statuses = (path: string, method: "get" | "post") =>
      Object.keys(doc.paths[path]?.[method]?.responses ?? {}).sort()
    assert.deepStrictEqual(statuses("/jobs", "post"), ["200", "400", "401", "413", "415", "422", "429", "503"])
    assert.deepStrictEqual(statuses("/jobs/{id}", "get"), ["200", "400", "401", "404", "429", "503"])
    assert.deepStrictEqual(statuses("/vendor-webhook/{vendor}", "post"), [
      "200",
      "400",
      "401",
      "404",
      "409",
      "413",
      "503"
    ])
    assert.deepStrictEqual(statuses("/health", "get"), ["200"])
    assert.strictEqual(doc.info.title, "vendorflow")
  })

  it("documents the API key schemes on the jobs and stats endpoints only", () => {
    const doc = OpenApi.fromApi(Api.Api) as unknown as {
      readonly components: { readonly securitySchemes: Record<string, unknown> }
      readonly paths: Record<string, Record<string, { readonly security?: unknown }>>
    }
    assert.deepStrictEqual(Object.keys(doc.components.securitySchemes).sort(), ["apiKey", "bearer"])
    const keyed = [{ bearer: [] }, { apiKey: [] }]
    assert.deepStrictEqual(doc.paths["/jobs"]?.["post"]?.security, keyed)
    assert.deepStrictEqual(doc.paths["/jobs/{id}/retry"]?.["post"]?.security, keyed)
    assert.deepStrictEqual(doc.paths["/stats"]?.["get"]?.security, keyed)
    assert.deepStrictEqual(doc.paths["/vendor-webhook/{vendor}"]?.["post"]?.security, [])
    assert.deepStrictEqual(doc.paths["/health"]?.["get"]?.security, [])
  })

  it("shows a job in snake_case, leaving out what it does not have", () => {
    const pending = Job.makePending({ vendor: "acme", payload: { q: 1 }, now: new Date("2026-01-01T00:00:00Z") })
    assert.deepStrictEqual(Api.toJobView(pending), {
      request_id: pending.id,
      status: "pending",
      vendor: "acme",
      attempts: 0,
      created_at: "2026-01-01T00:00:00.000Z",
      updated_at: "2026-01-01T00:00:00.000Z"
    })
    const failed = new Job.Job({
      ...pending,
      status: "failed",
      attempts: 3,
      error: { reason: "Rejected", message: "no" },
      awaitingCallback: false,
      result: { partial: true }
    })
    const view = Api.toJobView(failed)
    assert.deepStrictEqual(view.error, { reason: "Rejected", message: "no" })
    assert.strictEqual(view.awaiting_callback, false)
    assert.deepStrictEqual(view.result, { partial: true })
    assert.isTrue(Schema.is(Api.JobView)(view))
  })
})
