/**
 * Vendor definitions: an adapter written as data and a few functions, built into the runtime
 * {@link Vendor.Vendor} the engine uses.
 *
 * {@link defineVendor} takes what is particular to one vendor: its name and mode, how a job becomes
 * its request, the schemas of its answer and of its callback and how they map to the job's result,
 * how it signals errors beyond HTTP statuses, its default limits, which fields are PII, how its
 * webhooks are signed, and (async) how to ask it about an overdue job. Everything else (sending,
 * timeouts, the idempotency key, classification, signature checks, replay refusal) is done here the
 * same way for every vendor.
 *
 * {@link build} turns a definition into a `Vendor` with explicit {@link Settings}; {@link fromConfig}
 * reads the operator's overrides from the environment first:
 *
 * | variable | meaning |
 * |---|---|
 * | `VENDOR_<NAME>_URL` | the vendor's base URL |
 * | `VENDOR_<NAME>_SECRET` | the webhook signing secret (async vendors) |
 * | `VENDOR_<NAME>_<SECRET>` | each secret the definition declares, e.g. `VENDOR_ACME_CREDIT_API_KEY` |
 * | `VENDOR_<NAME>_RATE_LIMIT` | `"5/1s"`, `"100/500ms"`, `"60/1m"`, `"5"` (per second), `"none"`, `"auto"` (learned from the vendor's headers or 429s) or `"auto:50/1s"` (learned, never over 50/1s) |
 * | `VENDOR_<NAME>_TIMEOUT` | one call's budget: `"10s"`, `"500ms"`, `"2m"` or `"10 seconds"` |
 * | `VENDOR_<NAME>_MAX_RESPONSE_BYTES` | the largest answer read (default 5 MiB); a larger one fails the job `InvalidResponse` |
 * | `VENDOR_<NAME>_CONCURRENCY` | calls one worker runs at once |
 * | `VENDOR_<NAME>_MAX_IN_FLIGHT` | calls in flight at once across every worker |
 * | `VENDOR_<NAME>_MAX_ATTEMPTS` | attempts before a transient failure fails the job |
 * | `VENDOR_<NAME>_CALLBACK_DEADLINE` | how long an async job may wait for its callback |
 * | `VENDOR_<NAME>_ON_CALLBACK_TIMEOUT` | `resubmit` or `fail` an overdue async job `checkStatus` cannot settle |
 *
 * `<NAME>` is the vendor's name upper-cased with every run of other characters as `_`
 * (`acme-credit` → `ACME_CREDIT`).
 *
 * What an adapter author writes is in `VendorDefinition/Definition.ts`, the operator's settings in
 * `VendorDefinition/Settings.ts`, the builder in `VendorDefinition/Build.ts` (with the webhook
 * parser in `VendorDefinition/WebhookParser.ts`); all of it is exported from here.
 *
 * @since 0.1.0
 */
export * from "./VendorDefinition/Build.ts"
export * from "./VendorDefinition/Definition.ts"
export * from "./VendorDefinition/Settings.ts"
export * from "./VendorDefinition/WebhookParser.ts"
