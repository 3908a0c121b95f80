// @ts-check
/**
 * Ten minutes at 50 VUs with half a second between iterations, for what only time shows: memory
 * growth, connection leaks, a store that slows as it fills (p(95) under 2 s, under 1% failed).
 *
 *     k6 run -e BASE_URL=http://127.0.0.1:8000 load/soak.js
 *
 * Without k6: `npm run load -- --profile=soak` runs the same profile with the Node runner.
 */
import { iteration, optionsOf } from "./iteration.js"
import { soak as profile } from "./profiles.js"

export const options = optionsOf(profile)

export default function () {
  iteration(profile)
}
