/**
 * @vendorflow/core: jobs, vendors, rate limits and cleaning as Effect layers, with in-memory
 * implementations, the job engine, and the HTTP API contract with its typed client. The whole
 * embedded engine is one layer, `Vendorflow.layer`, and `createVendorflow` is it behind Promises.
 *
 * @since 0.1.0
 */
export * as Access from "./Access.ts"
export * as Api from "./Api.ts"
export * as ApiClient from "./ApiClient.ts"
export * as Backend from "./Backend.ts"
export * as Cleaner from "./Cleaner.ts"
export * as Consumer from "./Consumer.ts"
export * as Health from "./Health.ts"
export * as Job from "./Job.ts"
export * as JobProcessor from "./JobProcessor.ts"
export * as JobQueue from "./JobQueue.ts"
export * as JobService from "./JobService.ts"
export * as JobStore from "./JobStore.ts"
export * as Metrics from "./Metrics.ts"
export * as Port from "./Port.ts"
export * as RateLimiter from "./RateLimiter.ts"
export * as RateLimitStore from "./RateLimitStore.ts"
export * as Shutdown from "./Shutdown.ts"
export * as Stats from "./Stats.ts"
export * as Sweeper from "./Sweeper.ts"
export * as Vendor from "./Vendor.ts"
export * as VendorCircuit from "./VendorCircuit.ts"
export * as VendorDefinition from "./VendorDefinition.ts"
export * as Vendorflow from "./Vendorflow.ts"
export * as VendorRegistry from "./VendorRegistry.ts"
export * as Webhook from "./Webhook.ts"
export * as WebhookSignature from "./WebhookSignature.ts"
export * as Workers from "./Workers.ts"
export { createVendorflow } from "./Vendorflow.ts"
export { defineVendor } from "./VendorDefinition.ts"
