// @ts-check
/**
 * The original scenario: ramp to 50, 100 and 200 VUs over 30 s each, hold 200 for 30 s; each
 * iteration submits a job and reads it back. Thresholds: p(95) of http_req_duration under 2 s, under
 * 10% of requests failed.
 *
 *     k6 run -e BASE_URL=http://127.0.0.1:8000 load/scenario.js
 *
 * Without k6: `npm run load -- --profile=scenario` runs the same profile with the Node runner.
 */
import { iteration, optionsOf } from "./iteration.js"
import { scenario as profile } from "./profiles.js"

export const options = optionsOf(profile)

export default function () {
  iteration(profile)
}
