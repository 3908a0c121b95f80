/**
 * No request can end the process: a defect forced at each place on the batched transport (a
 * service that throws instead of returning an effect, one that dies, an answer that cannot be
 * written, an error the API cannot render, a key check that throws) is answered with the API's 500
 * problem, and the next request is served. An exception that escaped would end this test process
 * too. (A defect on both transports alike is a case of the shared table, HttpCases.test.ts.)
 */
import { assert, describe, layer } from "@effect/vitest"
import { Access, type Job, JobService } from "@vendorflow/core"
import { Effect, Layer, Redacted, Result } from "effect"
import { HttpServer } from "effect/http"
import * as Server from "../src/Server.ts"
import * as TestServer from "./support/TestServer.ts"

const alpha = TestServer.syncVendor("alpha")

type Fault = "throws" | "dies" | "unwritable" | "unrenderable"

// The fault the next request meets; each test sets it and clears it.
let fault: Fault | undefined

const boom = () => new Error("forced defect")

// A value that JSON.stringify cannot write.
const unwritable = {
  toJSON: () => {
    throw boom()
  }
}

// The real service, with the fault (when one is set) in the two calls the batched transport makes.
const FaultyJobs = Layer.effect(
  JobService.JobService,
  Effect.gen(function* () {
    const jobs = yield* JobService.JobService
    const faulty = <A, E>(real: Effect.Effect<A, E>, unwritten: (value: A) => A): Effect.Effect<A, E> => {
      switch (fault) {
        case undefined:
          return real
        case "throws":
          throw boom()
        case "dies":
          return Effect.die(boom())
        case "unwritable":
          return Effect.map(real, unwritten)
        case "unrenderable":
          // Not one of the API's problems (e.g. an error from another copy of the core).
          return Effect.fail(boom() as E)
      }
    }
    // The job as it was stored, with an id that cannot be written back to the client.
    const poison = <J extends Job.JobSummary>(job: J) => ({ ...job, id: unwritable }) as unknown as J
    return JobService.JobService.of({
      ...jobs,
      submitMany: (submissions) => faulty(jobs.submitMany(submissions), (outcomes) => outcomes.map(Result.map(poison))),
      getMany: (reads) => faulty(jobs.getMany(reads), (outcomes) => outcomes.map(Result.map(poison)))
    })
  })
)

// With API keys on, so that a request's key check is on the batched transport too.
const key = "k-secret"
const faultyAccess = Layer.effect(
  Access.Access,
  Access.Access.useSync((access) =>
    Access.Access.of({
      ...access,
      authorize: (credential) => {
        if (fault === "throws") throw boom()
        return access.authorize(credential)
      }
    })
  )
)

const Stack = Server.layerWith({ port: 0, host: "127.0.0.1", logAddress: false, hotPath: true }).pipe(
  Layer.provide(Layer.mergeAll(FaultyJobs, faultyAccess)),
  Layer.provideMerge(TestServer.layerCore([alpha], { access: { keys: new Map([["alice", Redacted.make(key)]]) } }))
)

const base = Effect.map(HttpServer.HttpServer, (server) => HttpServer.formatAddress(server.address))

const send = (path: string, init: RequestInit = {}) =>
  Effect.flatMap(base, (url) =>
    Effect.promise(async () => {
      const response = await fetch(`${url}${path}`, {
        ...init,
        headers: { authorization: `Bearer ${key}`, ...init.headers }
      })
      return { status: response.status, body: await response.text() }
    })
  )

const submit = send("/jobs", {
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify({ vendor: "alpha", company: "Acme" })
})

const withFault = <A, E, R>(which: Fault, effect: Effect.Effect<A, E, R>) =>
  Effect.acquireUseRelease(
    Effect.sync(() => (fault = which)),
    () => effect,
    () => Effect.sync(() => (fault = undefined))
  )

describe("a defect on the batched transport", () => {
  layer(Stack, { excludeTestServices: true })((it) => {
    for (const which of ["throws", "dies", "unwritable", "unrenderable"] as const) {
      it.effect(`(a service that ${which}) is a 500 problem, and the next request is served`, () =>
        Effect.gen(function* () {
          const created = yield* submit
          assert.strictEqual(created.status, 200)
          const id = (JSON.parse(created.body) as { request_id: string }).request_id

          for (const failed of yield* withFault(which, Effect.all([submit, send(`/jobs/${id}`)]))) {
            assert.strictEqual(failed.status, 500)
            assert.deepInclude(JSON.parse(failed.body), {
              status: 500,
              detail: "The server failed; the error is logged."
            })
          }

          assert.strictEqual((yield* submit).status, 200)
          const read = yield* send(`/jobs/${id}`)
          assert.strictEqual(read.status, 200)
          assert.strictEqual((JSON.parse(read.body) as { request_id: string }).request_id, id)
        })
      )
    }
  })
})
