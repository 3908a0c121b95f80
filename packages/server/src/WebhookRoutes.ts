/**
 * Core's `webhooks` group: `POST /vendor-webhook/{vendor}`, an async vendor's callback. The body is
 * read as raw text (within the body limit) because the vendor's signature covers the exact bytes;
 * the `JobService` has the vendor's adapter verify and parse it and applies it. Vendors sign
 * their callbacks, so no API key is asked for.
 *
 * @since 0.1.0
 */
import { Api, JobService, Metrics, type Vendor, VendorRegistry, WebhookSignature } from "@vendorflow/core"
import { Effect } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import * as Problems from "./Problems.ts"
import * as RequestBody from "./RequestBody.ts"

const problemFor = (error: Vendor.WebhookError) =>
  error.reason === "Malformed"
    ? new Api.MalformedWebhook({ detail: error.message })
    : new Api.InvalidSignature({ detail: error.message })

/**
 * The handler of `POST /vendor-webhook/{vendor}`, reading bodies up to `maxBodyBytes`.
 *
 * @category handlers
 */
export const handlers = (options: { readonly maxBodyBytes: number }) =>
  HttpApiBuilder.group(
    Api.Api,
    "webhooks",
    Effect.fnUntraced(function* (handlers) {
      const jobs = yield* JobService.JobService
      const registry = yield* VendorRegistry.VendorRegistry
      const webhookVendors = registry.vendors
        .filter((vendor) => vendor.parseWebhook !== undefined)
        .map((vendor) => vendor.name)
      return handlers.handleRaw("receive", ({ params, request }) =>
        RequestBody.readText(request, options.maxBodyBytes).pipe(
          Effect.catchTag("MalformedJson", (error) => Effect.fail(new Api.MalformedWebhook({ detail: error.detail }))),
          // Node lower-cases header names already; the adapter contract relies on it.
          Effect.flatMap((body) =>
            jobs.receiveWebhook(params.vendor, {
              headers: request.headers,
              body,
              callbackToken: WebhookSignature.callbackTokenOf(request.url)
            })
          ),
          Effect.map(Api.toJobView),
          Effect.catchTags({
            UnknownVendor: (error) =>
              Effect.fail(
                new Api.VendorNotFound({
                  detail: `No vendor named "${error.vendor}" takes webhooks.`,
                  vendor: error.vendor,
                  known_vendors: webhookVendors
                })
              ),
            WebhookError: (error) =>
              Metrics.count(Metrics.webhooksRejected, { vendor: params.vendor, reason: error.reason }).pipe(
                Effect.andThen(Effect.fail(problemFor(error)))
              ),
            JobNotFound: (error) => Effect.fail(Problems.jobNotFound(error)),
            CallbackNotApplied: (error) =>
              Metrics.count(Metrics.webhooksRejected, { vendor: params.vendor, reason: "NotApplied" }).pipe(
                Effect.andThen(Effect.fail(new Api.CallbackNotApplied({ detail: error.message, job_id: error.id })))
              ),
            JobStoreError: Problems.serviceUnavailable
          })
        )
      )
    })
  )
