/**
 * A tiny Acme Credit: a real local HTTP server that answers `POST /v1/credit-checks` the way the
 * vendor documents, checks the API key, and reports an unknown company and a spent quota in a
 * 200 body as Acme does. Built on the kit's `VendorSimulator`, so tests can still script faults.
 */
import { VendorSimulator } from "@vendorflow/adapter-kit/simulator"
import type { StubServer } from "@vendorflow/adapter-kit/simulator"

/** The API key the simulator accepts. */
export const apiKey = "acme-test-key"

/** Companies the simulator does not know; a check for one answers `UNKNOWN_COMPANY`. */
export const unknownCompany = "Nobody Inc"

/** A company whose checks answer `QUOTA` with a retry in 30 seconds. */
export const quotaCompany = "Quota Spent Ltd"

/** Acme's answer for a request, as its documentation shows it (with its stray whitespace). */
export const answer = (request: StubServer.Received): unknown => {
  const body = VendorSimulator.jsonBody(request) as { company?: string; reference?: string } | undefined
  const company = body?.company ?? ""
  if (company === unknownCompany) return { error: { code: "UNKNOWN_COMPANY" } }
  if (company === quotaCompany) return { error: { code: "QUOTA", retry_in: 30 } }
  return {
    check: {
      id: `chk_${(body?.reference ?? "").slice(0, 8)}`,
      score: 300 + ((company.length * 37) % 550),
      band: "B",
      applicant: { name: `  ${company} Treasurer `, tax_id: "TX-4417-2208-93", email: "treasurer@acme.example " }
    }
  }
}

/** Starts the simulator for the life of the scope. */
export const make = () =>
  VendorSimulator.make({
    respond: (request) =>
      request.headers["x-acme-key"] === apiKey
        ? { status: 200, json: answer(request) }
        : { status: 401, json: { error: { code: "BAD_KEY" } } }
  })
