// @ts-check
/**
 * A spike to 400 VUs within 10 s from a steady 20, held 30 s, then back down: the API must absorb
 * the burst and recover (p(95) under 5 s, under 10% failed).
 *
 *     k6 run -e BASE_URL=http://127.0.0.1:8000 load/spike.js
 *
 * Without k6: `npm run load -- --profile=spike` runs the same profile with the Node runner.
 */
import { iteration, optionsOf } from "./iteration.js"
import { spike as profile } from "./profiles.js"

export const options = optionsOf(profile)

export default function () {
  iteration(profile)
}
