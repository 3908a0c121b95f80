import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { TestClock } from "effect/testing"
import * as WebhookSignature from "../src/WebhookSignature.ts"

describe("WebhookSignature", () => {
  it("signs and verifies in constant time within the tolerance", () => {
    const header = WebhookSignature.sign({ secret: "s", body: "{}", timestamp: 1000 })
    const verify = (options: Partial<Parameters<typeof WebhookSignature.verify>[0]>) =>
      WebhookSignature.verify({ secret: "s", body: "{}", header, nowSeconds: 1000, ...options })
    assert.strictEqual(verify({}), "valid")
    assert.strictEqual(verify({ nowSeconds: 1300 }), "valid")
    assert.strictEqual(verify({ nowSeconds: 1301 }), "stale")
    assert.strictEqual(verify({ nowSeconds: 699 }), "stale")
    assert.strictEqual(verify({ body: "{ }" }), "mismatch")
    assert.strictEqual(verify({ header: undefined }), "missing")
    assert.strictEqual(verify({ header: "t=1000,v1=xyz" }), "malformed")
    assert.strictEqual(
      WebhookSignature.hmacSha256.verify({ secret: "s", body: "{}", header, nowSeconds: 1000 }),
      "valid"
    )
  })

  it.effect("a memory replay guard accepts a key once within its window, then again after it", () =>
    Effect.gen(function* () {
      const guard = WebhookSignature.makeMemoryReplayGuard()
      assert.isTrue(yield* guard.claim("a", 600))
      assert.isFalse(yield* guard.claim("a", 600))
      assert.isTrue(yield* guard.claim("b", 600))
      yield* TestClock.adjust("599 seconds")
      assert.isFalse(yield* guard.claim("a", 600))
      yield* TestClock.adjust("1 second")
      assert.isTrue(yield* guard.claim("a", 600))
      assert.strictEqual(WebhookSignature.replayWindowSeconds(), 600)
    })
  )

  it.effect("a memory replay guard forgets its oldest keys beyond its capacity", () =>
    Effect.gen(function* () {
      const guard = WebhookSignature.makeMemoryReplayGuard({ capacity: 2 })
      yield* guard.claim("a", 600)
      yield* guard.claim("b", 600)
      yield* guard.claim("c", 600)
      assert.isFalse(yield* guard.claim("c", 600))
      assert.isTrue(yield* guard.claim("a", 600), "a was forgotten to make room")
    })
  )

  it("makes a per-job, per-run callback token and checks it against the job's run", () => {
    const jobId = "5b0a0d53-5f0e-4a0e-9a8b-4f3c1d2e7a10"
    const token = WebhookSignature.callbackToken({ secret: "server", jobId, run: 2 })
    assert.match(token, /^2\.[A-Za-z0-9_-]{43}$/)
    const verify = (options: Partial<Parameters<typeof WebhookSignature.verifyCallbackToken>[0]>) =>
      WebhookSignature.verifyCallbackToken({ secret: "server", token, jobId, run: 2, ...options })
    assert.strictEqual(verify({}), "valid")
    // The job was retried by an operator since: the token's run is over.
    assert.strictEqual(verify({ run: 3 }), "earlier-run")
    // A run the job has not reached is not one of its tokens.
    assert.strictEqual(verify({ run: 1 }), "mismatch")
    assert.strictEqual(verify({ jobId: "another-job" }), "mismatch")
    assert.strictEqual(verify({ secret: "other" }), "mismatch")
    assert.strictEqual(verify({ token: undefined }), "missing")
    assert.strictEqual(verify({ token: "2.short" }), "malformed")
    assert.strictEqual(verify({ token: token.replace(/^2/, "3") }), "mismatch")
  })

  it.effect("a memory replay guard tells whether a key is claimed without claiming it", () =>
    Effect.gen(function* () {
      const guard = WebhookSignature.makeMemoryReplayGuard()
      assert.isFalse(yield* guard.seen("a"))
      assert.isFalse(yield* guard.seen("a"), "looking does not claim")
      assert.isTrue(yield* guard.claim("a", 600))
      assert.isTrue(yield* guard.seen("a"))
      yield* TestClock.adjust("600 seconds")
      assert.isFalse(yield* guard.seen("a"), "nor after its window")
    })
  )

  it("carries the token in the webhook URL", () => {
    const url = WebhookSignature.withCallbackToken("http://us.test/vendor-webhook/acme", "2.abc")
    assert.strictEqual(url, "http://us.test/vendor-webhook/acme?token=2.abc")
    assert.strictEqual(
      WebhookSignature.withCallbackToken("http://us.test/vendor-webhook/acme?x=1", "2.abc"),
      "http://us.test/vendor-webhook/acme?x=1&token=2.abc"
    )
    assert.strictEqual(WebhookSignature.callbackTokenOf(url), "2.abc")
    assert.strictEqual(WebhookSignature.callbackTokenOf("/vendor-webhook/acme?token=2.abc"), "2.abc")
    assert.isUndefined(WebhookSignature.callbackTokenOf("/vendor-webhook/acme"))
  })
})
