// @ts-check
/**
 * The load profiles, as data, shared by the k6 scripts (`scenario.js`, `spike.js`, `soak.js`) and
 * the Node runner (`run.ts`), so both run the same stages against the same thresholds with the same
 * jobs. Plain JavaScript with JSDoc types: k6 and Node both load it as it is, and `tsc` checks it.
 *
 * Stages and thresholds are written in k6's own syntax (`"30s"`, `"p(95)<2000"`); the Node runner
 * reads that syntax too (see `src/Profile.ts`).
 */

/**
 * One stage of a ramping-VUs profile: move linearly to `target` VUs over `duration`.
 *
 * @typedef {{ readonly duration: string, readonly target: number }} Stage
 */

/**
 * A load profile: its stages, its pass/fail thresholds per metric, and the pause between a VU's
 * iterations in seconds (0: each VU starts its next iteration as soon as the last one ends).
 *
 * @typedef {{
 *   readonly stages: ReadonlyArray<Stage>,
 *   readonly thresholds: Readonly<Record<string, ReadonlyArray<string>>>,
 *   readonly thinkTime: number
 * }} Profile
 */

/**
 * The original scenario: ramp to 50, 100 and 200 VUs over 30 s each, hold 200 for 30 s; each
 * iteration submits a job and reads it back at once.
 *
 * @type {Profile}
 */
export const scenario = {
  stages: [
    { duration: "30s", target: 50 },
    { duration: "30s", target: 100 },
    { duration: "30s", target: 200 },
    { duration: "30s", target: 200 }
  ],
  thresholds: {
    http_req_duration: ["p(95)<2000"],
    http_req_failed: ["rate<0.1"]
  },
  thinkTime: 0
}

/**
 * A spike: a small steady load, a jump to twice the scenario's peak within 10 s, then back down,
 * to see the API absorb the burst and recover. Latency may rise during the spike, errors may not.
 *
 * @type {Profile}
 */
export const spike = {
  stages: [
    { duration: "10s", target: 20 },
    { duration: "20s", target: 20 },
    { duration: "10s", target: 400 },
    { duration: "30s", target: 400 },
    { duration: "10s", target: 20 },
    { duration: "30s", target: 20 },
    { duration: "10s", target: 0 }
  ],
  thresholds: {
    http_req_duration: ["p(95)<5000"],
    http_req_failed: ["rate<0.1"]
  },
  thinkTime: 0
}

/**
 * A soak: ten minutes at a moderate, steady load with a pause between iterations, for what only
 * time shows (memory growth, connection leaks, a store that slows as it fills).
 *
 * @type {Profile}
 */
export const soak = {
  stages: [
    { duration: "1m", target: 50 },
    { duration: "8m", target: 50 },
    { duration: "1m", target: 0 }
  ],
  thresholds: {
    http_req_duration: ["p(95)<2000"],
    http_req_failed: ["rate<0.01"]
  },
  thinkTime: 0.5
}

/**
 * Every profile by name.
 *
 * @type {Readonly<Record<"scenario" | "spike" | "soak", Profile>>}
 */
export const profiles = { scenario, spike, soak }

/**
 * The job one iteration submits: sync and async vendors alternate, and the payload carries PII so
 * the cleaner has work to do.
 *
 * @param {number} vu the VU's number, from 1
 * @param {number} iteration the VU's iteration, from 0
 */
export const jobPayload = (vu, iteration) => ({
  vendor: (vu + iteration) % 2 === 0 ? "sync" : "async",
  company: "  Acme Corp  ",
  contact: "jane.doe@example.com",
  reference: `vu${vu}-it${iteration}`
})
