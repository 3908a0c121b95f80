import { assert, describe, it } from "@effect/vitest"
import { Schema } from "effect"
import * as Job from "../src/Job.ts"
import * as JobStore from "../src/JobStore.ts"

const statuses = Job.JobStatus.literals

// Every ordered pair of statuses, with whether the job model allows it.
const allowed = new Set([
  "pending>processing",
  // A callback that arrives while its job waits to be sent again.
  "pending>complete",
  "pending>failed",
  "processing>complete",
  "processing>failed",
  "processing>pending",
  "failed>pending"
])

describe("Job", () => {
  describe("transitions", () => {
    for (const from of statuses) {
      for (const to of statuses) {
        if (from === to) continue
        const expected = allowed.has(`${from}>${to}`)
        it(`${from} → ${to} is ${expected ? "allowed" : "refused"}`, () => {
          assert.strictEqual(Job.canTransition(from, to), expected)
          assert.strictEqual(JobStore.isAllowed({ from, to }), expected)
        })
      }
    }

    it("a same-status update is allowed only for unfinished jobs", () => {
      assert.deepStrictEqual(
        statuses.map((status) => [status, JobStore.isAllowed({ from: status, to: status })]),
        [
          ["pending", true],
          ["processing", true],
          ["complete", false],
          ["failed", false]
        ]
      )
    })

    it("complete is final, failed only goes back to pending (an operator's retry)", () => {
      assert.isTrue(Job.isFinished("complete"))
      assert.isTrue(Job.isFinished("failed"))
      assert.isFalse(Job.isFinished("pending"))
      assert.isFalse(Job.isFinished("processing"))
    })
  })

  describe("JobId", () => {
    it("accepts a UUID v4 and refuses anything else", () => {
      const decode = Schema.decodeUnknownOption(Job.JobId)
      assert.strictEqual(decode(Job.makeJobId())._tag, "Some")
      for (const bad of ["", "not-a-uuid", "../etc/passwd", "6ba7b810-9dad-11d1-80b4-00c04fd430c8", 42, { $gt: "" }]) {
        assert.strictEqual(decode(bad)._tag, "None", String(bad))
      }
    })
  })

  it("makePending starts a job at version 0 with no attempts", () => {
    const now = new Date("2026-01-01T00:00:00.000Z")
    const job = Job.makePending({ vendor: "sync", payload: { a: 1 }, now })
    assert.deepStrictEqual(
      {
        status: job.status,
        attempts: job.attempts,
        version: job.version,
        createdAt: job.createdAt,
        updatedAt: job.updatedAt
      },
      { status: "pending", attempts: 0, version: 0, createdAt: now.toISOString(), updatedAt: now.toISOString() }
    )
  })
})
