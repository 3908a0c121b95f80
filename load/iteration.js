// @ts-check
/**
 * What every k6 script here does in one iteration, and its options from a profile: submit a job
 * (`POST /jobs`), then read it back (`GET /jobs/{id}`), checking both answers. The Node runner
 * (`Load` of `@vendorflow/dev-stack`) does the same iteration; keep the two in step.
 *
 * `BASE_URL` (default http://127.0.0.1:8000) is the API under test.
 */
import { check, sleep } from "k6"
import http from "k6/http"
import { jobPayload } from "./profiles.js"

const baseUrl = (__ENV["BASE_URL"] ?? "http://127.0.0.1:8000").replace(/\/+$/, "")

/**
 * k6's options for a profile: its stages and thresholds.
 *
 * @param {import("./profiles.js").Profile} profile
 * @returns {import("k6/options").Options}
 */
export const optionsOf = (profile) => ({
  stages: profile.stages.map((stage) => ({ ...stage })),
  thresholds: Object.fromEntries(Object.entries(profile.thresholds).map(([metric, rules]) => [metric, [...rules]]))
})

/**
 * One iteration: POST a job, then GET it; both must answer 200, the POST with a `request_id`.
 *
 * @param {import("./profiles.js").Profile} profile
 */
export const iteration = (profile) => {
  const submitted = http.post(`${baseUrl}/jobs`, JSON.stringify(jobPayload(__VU, __ITER)), {
    headers: { "content-type": "application/json" },
    tags: { name: "POST /jobs" }
  })
  /** @type {unknown} */
  const id = submitted.status === 200 ? submitted.json("request_id") : undefined
  const accepted = check(submitted, {
    "POST /jobs is 200": (r) => r.status === 200,
    "POST /jobs gives a request_id": () => typeof id === "string"
  })
  if (accepted && typeof id === "string") {
    const read = http.get(`${baseUrl}/jobs/${id}`, { tags: { name: "GET /jobs/{id}" } })
    check(read, { "GET /jobs/{id} is 200": (r) => r.status === 200 })
  }
  if (profile.thinkTime > 0) sleep(profile.thinkTime)
}
