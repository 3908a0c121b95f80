/**
 * @vendorflow/example-custom-adapter: the adapter for Acme Credit, a (made-up) credit-check vendor
 * that answers in its HTTP response.
 *
 * Install it next to vendorflow and name it: `VENDORFLOW_ADAPTERS=@vendorflow/example-custom-adapter`,
 * with `VENDOR_ACME_CREDIT_API_KEY` set (and `VENDOR_ACME_CREDIT_URL` to point elsewhere).
 *
 * @since 0.1.0
 */
import { defineVendor, permanent, rateLimited, type VendorDefinition } from "@vendorflow/adapter-kit"
import { Option, Schema } from "effect"

/**
 * Acme's answer to `POST /v1/credit-checks`.
 *
 * @category schemas
 */
export const CreditCheck = Schema.Struct({
  check: Schema.Struct({
    id: Schema.String,
    score: Schema.Int.check(Schema.isBetween({ minimum: 300, maximum: 850 })),
    band: Schema.Literals(["A", "B", "C", "D"]),
    applicant: Schema.Struct({ name: Schema.String, tax_id: Schema.String, email: Schema.String })
  })
})

// Acme reports some errors as 200 with an error body: a spent quota and a company it does not know.
const AcmeError = Schema.Struct({
  error: Schema.Struct({ code: Schema.String, retry_in: Schema.optionalKey(Schema.Int) })
})
const acmeError = Schema.decodeUnknownOption(Schema.fromJsonString(AcmeError))

/**
 * The Acme Credit vendor.
 *
 * @category definitions
 */
export const acmeCredit = defineVendor({
  name: "acme-credit",
  mode: "sync",
  url: "https://api.acme-credit.example",
  secrets: ["API_KEY"],
  request: (call) => ({
    path: "/v1/credit-checks",
    headers: { "x-acme-key": call.secret("API_KEY") },
    body: { company: call.payload["company"] ?? null, country: call.payload["country"] ?? "US", reference: call.jobId }
  }),
  response: CreditCheck,
  result: ({ check }) => ({ check_id: check.id, score: check.score, band: check.band, applicant: check.applicant }),
  classify: (answer) => {
    const error = Option.getOrUndefined(acmeError(answer.body))?.error
    if (error?.code === "QUOTA") return rateLimited((error.retry_in ?? 60) * 1000, "Acme Credit: quota spent")
    if (error?.code === "UNKNOWN_COMPANY") return permanent("Acme Credit does not know this company")
    return undefined
  },
  piiKeys: ["taxId"],
  defaults: { rateLimit: "10/1s", timeout: "5s", concurrency: 4 }
})

/**
 * What this adapter package provides.
 *
 * @category adapter
 */
export const vendors: ReadonlyArray<VendorDefinition.VendorDefinition> = [acmeCredit]
