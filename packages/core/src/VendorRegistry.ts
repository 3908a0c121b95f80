/**
 * The vendor registry: the adapters that are loaded, and which one serves a new job.
 *
 * A job names its vendor in the payload's `vendor` field or in the request (`?vendor=`); otherwise
 * the routing policy picks one: `round-robin` over the loaded vendors (the default), or a fixed name.
 *
 * @since 0.1.0
 */
import { Config, Context, Effect, Layer, Schema } from "effect"
import type { JsonObject } from "./Job.ts"
import type { Vendor } from "./Vendor.ts"

/**
 * No loaded vendor has this name.
 *
 * @category errors
 */
export class UnknownVendor extends Schema.TaggedError<UnknownVendor>()("UnknownVendor", {
  vendor: Schema.String,
  known: Schema.Array(Schema.String)
}) {
  override get message(): string {
    return `unknown vendor "${this.vendor}"; known vendors: ${this.known.join(", ")}`
  }
}

/**
 * How a job that names no vendor is routed: `round-robin`, or the name of one vendor.
 *
 * @category models
 */
export type Routing = "round-robin" | { readonly vendor: string }

/**
 * The vendor registry service.
 *
 * @category services
 */
export class VendorRegistry extends Context.Service<
  VendorRegistry,
  {
    readonly vendors: ReadonlyArray<Vendor>
    readonly get: (name: string) => Effect.Effect<Vendor, UnknownVendor>
    /** The vendor for a new job: the payload's `vendor`, else `requested`, else the routing policy. */
    readonly route: (payload: JsonObject, requested?: string | undefined) => Effect.Effect<Vendor, UnknownVendor>
  }
>()("@vendorflow/core/VendorRegistry") {}

/**
 * A registry over the given adapters; fails when two share a name or a fixed route names none of them.
 *
 * @category constructors
 */
export const make = (vendors: ReadonlyArray<Vendor>, routing: Routing = "round-robin") =>
  Effect.gen(function* () {
    const byName = new Map<string, Vendor>()
    for (const vendor of vendors) {
      if (byName.has(vendor.name)) return yield* Effect.die(new Error(`two adapters are named "${vendor.name}"`))
      byName.set(vendor.name, vendor)
    }
    const known = [...byName.keys()]
    const get = (name: string) => {
      const vendor = byName.get(name)
      return vendor === undefined ? Effect.fail(new UnknownVendor({ vendor: name, known })) : Effect.succeed(vendor)
    }
    if (routing !== "round-robin") yield* get(routing.vendor)
    let next = 0
    const byPolicy = (): Effect.Effect<Vendor, UnknownVendor> => {
      if (routing !== "round-robin") return get(routing.vendor)
      const vendor = vendors[next++ % vendors.length]
      return vendor === undefined
        ? Effect.fail(new UnknownVendor({ vendor: "(none loaded)", known }))
        : Effect.succeed(vendor)
    }
    return VendorRegistry.of({
      vendors,
      get,
      route: (payload, requested) => {
        const named = typeof payload["vendor"] === "string" ? payload["vendor"] : requested
        return named === undefined ? byPolicy() : get(named)
      }
    })
  })

/**
 * The routing policy from `DEFAULT_VENDOR`: `round-robin` (default) or a vendor name.
 *
 * @category config
 */
export const routingConfig: Config.Config<Routing> = Config.String("DEFAULT_VENDOR").pipe(
  Config.withDefault("round-robin"),
  Config.map((value) => (value === "round-robin" ? ("round-robin" as const) : { vendor: value }))
)

/**
 * A registry over adapters that are built by effects, routed
 * by `DEFAULT_VENDOR`.
 *
 * @category layers
 */
export const layer = <E, R>(vendors: ReadonlyArray<Effect.Effect<Vendor, E, R>>) =>
  Layer.effect(
    VendorRegistry,
    Effect.gen(function* () {
      const loaded = yield* Effect.all(vendors)
      return yield* make(loaded, yield* routingConfig)
    })
  )
