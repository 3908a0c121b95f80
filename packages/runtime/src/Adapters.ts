/**
 * Loading vendor adapters by package name, so an operator adds a vendor to a deployment by
 * installing its package and naming it, without touching our code.
 *
 * What is loaded comes from `VENDORFLOW_ADAPTERS` (package names, comma-separated) and from
 * `vendorflow.config.json` in the working directory (or at `VENDORFLOW_CONFIG`):
 *
 * ```json
 * { "adapters": ["@acme/vendorflow-adapter-foo"],
 *   "vendors": { "rest": { "adapter": "@vendorflow/adapter-http", "url": "https://…", "result": "data" } } }
 * ```
 *
 * A package under `adapters` provides the vendors it exports as `vendors`; an entry under `vendors`
 * makes one vendor of that name with the package's `configure` and the entry's other options. With
 * nothing configured, a development process loads the two mock vendors (when they are installed);
 * with `NODE_ENV=production` nothing is loaded by default, and start-up stops saying how to name
 * adapters. Each vendor is then built with the operator's `VENDOR_<NAME>_*` settings (see
 * `VendorDefinition`).
 *
 * Every package is checked before use: it must be installed, use the deployment's own copies of
 * `@vendorflow/core` and `effect` (a package with copies of its own, such as one installed from a
 * folder with its own `node_modules`, would fail its jobs in puzzling ways), declare the
 * `@vendorflow/core` it was built for (a `peerDependencies` or `dependencies` range in its
 * `package.json`, else an exported `coreVersion`) on the same major line as this core (`0.x` lines
 * count as majors, as npm's caret does), and export `vendors` or `configure`. Any failure stops
 * start-up with an {@link AdapterError} whose message is one line naming the package and what to do.
 *
 * Packages are imported from where this module is installed, so they must sit in the same
 * `node_modules` tree as `@vendorflow/runtime` (the usual `npm install` in the app).
 *
 * Layers: {@link layer} (the `VendorRegistry` from the environment), {@link layerWith} (from an
 * explicit {@link Selection}).
 *
 * @since 0.1.0
 */
import { existsSync, readFileSync, realpathSync } from "node:fs"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { VendorDefinition, VendorRegistry } from "@vendorflow/core"
import { Config, Effect, Layer, Option, Schema, SemVerRange } from "effect"

/**
 * One entry under `vendors` in the config file: the adapter package and its options.
 *
 * @category models
 */
export interface VendorEntry {
  readonly adapter: string
  readonly options: Readonly<Record<string, unknown>>
}

/**
 * What to load.
 *
 * @category models
 */
export interface Selection {
  /** Packages whose exported `vendors` are loaded as they are. */
  readonly adapters: ReadonlyArray<string>
  /** Vendors made by a package's `configure`, by name. */
  readonly vendors: Readonly<Record<string, VendorEntry>>
}

/**
 * The packages a development process loads when nothing is configured: the two mock vendors.
 *
 * @category constants
 */
export const defaultAdapters: ReadonlyArray<string> = [
  "@vendorflow/adapter-mock-sync",
  "@vendorflow/adapter-mock-async"
]

/**
 * The config file looked for in the working directory.
 *
 * @category constants
 */
export const configFileName = "vendorflow.config.json"

/**
 * Why the adapters could not be loaded: a package that is not installed, built for another core or
 * against copies of core or Effect of its own, or that exports nothing usable; a config file that
 * cannot be read; two vendors with one name; a vendor whose `VENDOR_<NAME>_*` settings are missing
 * or cannot be read; no adapter named in production.
 *
 * @category errors
 */
export class AdapterError extends Schema.TaggedError<AdapterError>()("AdapterError", {
  adapter: Schema.String,
  reason: Schema.Literals(["Missing", "Incompatible", "Invalid", "ConfigFile", "Duplicate", "Settings", "Unnamed"]),
  message: Schema.String
}) {}

const fail = (adapter: string, reason: AdapterError["reason"], message: string) =>
  Effect.fail(new AdapterError({ adapter, reason, message }))

// The compatibility line of a version: its major, or `0.minor` before 1.0 (npm's caret rule).
const lineOf = (major: number, minor: number | undefined): string =>
  major > 0 ? `${major}` : minor === undefined ? "0" : `0.${minor}`

/**
 * Whether an adapter that declares `range` for `@vendorflow/core` fits core `version`: some
 * alternative of the range starts on the same major line (`^0.1.0` fits 0.1.7, not 0.2.0;
 * `^1.2.0` and `1.x` fit 1.9.0, not 2.0.0). `*` and workspace ranges fit anything.
 *
 * @category versions
 */
export const isCompatible = (range: string, version: string): boolean => {
  const declared = range.trim()
  if (declared === "*" || declared === "" || declared.startsWith("workspace:")) return true
  const core = /^(\d+)\.(\d+)/.exec(version)
  if (core === null || SemVerRange.parse(declared)._tag === "Failure") return false
  const coreLine = lineOf(Number(core[1]), Number(core[2]))
  return declared.split("||").some((alternative) => {
    const lower = /(\d+)(?:\.(\d+))?/.exec(alternative)
    if (lower === null) return false
    const line = lineOf(Number(lower[1]), lower[2] === undefined ? undefined : Number(lower[2]))
    return line === coreLine || (line === "0" && coreLine.startsWith("0."))
  })
}

const PackageJson = Schema.Struct({
  name: Schema.optionalKey(Schema.String),
  version: Schema.optionalKey(Schema.String),
  dependencies: Schema.optionalKey(Schema.Record(Schema.String, Schema.String)),
  peerDependencies: Schema.optionalKey(Schema.Record(Schema.String, Schema.String))
})
const decodePackageJson = Schema.decodeUnknownOption(Schema.fromJsonString(PackageJson))

const here = dirname(fileURLToPath(import.meta.url))

// Where Node would find `name`'s package.json from `from`: each `node_modules` up the tree.
const findPackageJson = (name: string, from: ReadonlyArray<string>): string | undefined => {
  for (const start of from) {
    for (let dir = resolve(start); ; dir = dirname(dir)) {
      const candidate = join(dir, "node_modules", name, "package.json")
      if (existsSync(candidate)) return candidate
      if (dirname(dir) === dir) break
    }
  }
  return undefined
}

const readPackageJson = (name: string) =>
  Effect.gen(function* () {
    const path = yield* Effect.sync(() => findPackageJson(name, [here, process.cwd()]))
    if (path === undefined) {
      return yield* fail(name, "Missing", `adapter ${name} is not installed (npm install ${name})`)
    }
    const text = yield* Effect.try({
      try: () => readFileSync(path, "utf8"),
      catch: () => new AdapterError({ adapter: name, reason: "Invalid", message: `cannot read ${path}` })
    })
    const pkg = yield* Option.match(decodePackageJson(text), {
      onNone: () => fail(name, "Invalid", `adapter ${name} has an unreadable package.json (${path})`),
      onSome: Effect.succeed
    })
    return { pkg, dir: dirname(path) }
  })

// The packages whose one copy the deployment and its adapters must share: two copies of core make
// two registries of tagged errors and schemas, and two of Effect make values that one copy's checks
// do not recognise (a valid integer refused as "Expected an integer").
const shared = ["@vendorflow/core", "effect"] as const

// Where `name` resolves from `dir`, as Node resolves it: from the package's real location (a folder
// installed with `npm install ../adapter` is a link, and its imports resolve from where it is).
const resolvedFrom = (name: string, dir: string): string | undefined => {
  const path = findPackageJson(name, [realpathSync(dir)])
  return path === undefined ? undefined : dirname(realpathSync(path))
}

// The first shared package that `dir` resolves to another copy than this runtime does.
const ownCopy = (dir: string) =>
  Effect.sync(() => {
    for (const name of shared) {
      const theirs = resolvedFrom(name, dir)
      const ours = resolvedFrom(name, here)
      if (theirs !== undefined && theirs !== ours) return { name, theirs, ours }
    }
    return undefined
  })

/**
 * The version of the `@vendorflow/core` this process runs.
 *
 * @category versions
 */
export const coreVersion: Effect.Effect<string, AdapterError> = Effect.flatMap(
  readPackageJson("@vendorflow/core"),
  ({ pkg }) =>
    pkg.version === undefined
      ? fail("@vendorflow/core", "Invalid", "@vendorflow/core has no version")
      : Effect.succeed(pkg.version)
)

const firstLine = (error: unknown): string =>
  (error instanceof Error ? error.message : String(error)).split("\n")[0] ?? ""

const isModule = (value: unknown): value is VendorDefinition.AdapterModule =>
  typeof value === "object" && value !== null

/**
 * Imports an adapter package and checks it: installed, on this deployment's copies of core and
 * Effect, built for this core's major line, and exporting `vendors` or `configure`.
 *
 * @category loading
 */
export const importAdapter = Effect.fnUntraced(function* (name: string, core: string) {
  const { pkg, dir } = yield* readPackageJson(name)
  const copy = yield* ownCopy(dir)
  if (copy !== undefined) {
    return yield* fail(
      name,
      "Incompatible",
      `adapter ${name} uses its own copy of ${copy.name} (${copy.theirs}), not the deployment's (${copy.ours ?? "none"}); declare ${copy.name} as a peer dependency and install the adapter from the registry or a packed tarball (npm pack), not from a folder with its own node_modules`
    )
  }
  const imported: unknown = yield* Effect.tryPromise({
    try: () => import(name),
    catch: (error) =>
      new AdapterError({
        adapter: name,
        reason: "Invalid",
        message: `adapter ${name} could not be loaded: ${firstLine(error)}`
      })
  })
  if (!isModule(imported)) return yield* fail(name, "Invalid", `adapter ${name} is not a module`)
  const declared =
    pkg.peerDependencies?.["@vendorflow/core"] ?? pkg.dependencies?.["@vendorflow/core"] ?? imported.coreVersion
  if (declared === undefined) {
    return yield* fail(
      name,
      "Incompatible",
      `adapter ${name} does not say which @vendorflow/core it was built for (add a peerDependency on @vendorflow/core)`
    )
  }
  if (!isCompatible(declared, core)) {
    return yield* fail(
      name,
      "Incompatible",
      `adapter ${name}${pkg.version === undefined ? "" : `@${pkg.version}`} was built for @vendorflow/core ${declared}, but this is @vendorflow/core ${core}; install a version of ${name} made for it`
    )
  }
  const vendors = imported.vendors
  if (vendors !== undefined && !(Array.isArray(vendors) && vendors.every(VendorDefinition.isVendorDefinition))) {
    return yield* fail(name, "Invalid", `adapter ${name} exports "vendors" that are not made with defineVendor`)
  }
  if (vendors === undefined && typeof imported.configure !== "function") {
    return yield* fail(name, "Invalid", `adapter ${name} exports neither "vendors" nor "configure"`)
  }
  return imported
})

/**
 * The definitions a selection names, every package checked; two vendors with one name are refused.
 *
 * @category loading
 */
export const load = Effect.fnUntraced(function* (selection: Selection) {
  const core = yield* coreVersion
  const definitions: Array<VendorDefinition.VendorDefinition> = []
  for (const name of selection.adapters) {
    const module = yield* importAdapter(name, core)
    if (module.vendors === undefined || module.vendors.length === 0) {
      return yield* fail(name, "Invalid", `adapter ${name} provides no vendors itself; configure one under "vendors"`)
    }
    definitions.push(...module.vendors)
  }
  for (const [vendor, entry] of Object.entries(selection.vendors)) {
    const module = yield* importAdapter(entry.adapter, core)
    const configure = module.configure
    if (configure === undefined) {
      return yield* fail(
        entry.adapter,
        "Invalid",
        `adapter ${entry.adapter} cannot configure vendor "${vendor}" (no "configure")`
      )
    }
    definitions.push(
      yield* Effect.suspend(() => configure(vendor, entry.options)).pipe(
        Effect.mapError(
          (error) => new AdapterError({ adapter: entry.adapter, reason: "Invalid", message: error.message })
        )
      )
    )
  }
  const names = definitions.map((definition) => definition.name)
  const repeated = names.find((name, index) => names.indexOf(name) !== index)
  if (repeated !== undefined) {
    return yield* fail(repeated, "Duplicate", `two adapters provide a vendor named "${repeated}"`)
  }
  return definitions
})

const ConfigFile = Schema.Struct({
  adapters: Schema.optionalKey(Schema.Array(Schema.String)),
  vendors: Schema.optionalKey(
    Schema.Record(
      Schema.String,
      Schema.StructWithRest(Schema.Struct({ adapter: Schema.String }), [Schema.Record(Schema.String, Schema.Json)])
    )
  )
})
const decodeConfigFile = Schema.decodeUnknownEffect(Schema.fromJsonString(ConfigFile))

/**
 * Reads a config file; a missing file is an empty selection unless `required`.
 *
 * @category config
 */
export const readConfigFile = Effect.fnUntraced(function* (path: string, required: boolean) {
  if (!(yield* Effect.sync(() => existsSync(path)))) {
    return required
      ? yield* fail(path, "ConfigFile", `${path} does not exist (VENDORFLOW_CONFIG)`)
      : { adapters: [], vendors: {} }
  }
  const text = yield* Effect.try({
    try: () => readFileSync(path, "utf8"),
    catch: (error) =>
      new AdapterError({ adapter: path, reason: "ConfigFile", message: `cannot read ${path}: ${firstLine(error)}` })
  })
  const file = yield* decodeConfigFile(text).pipe(
    Effect.mapError(
      (error) =>
        new AdapterError({
          adapter: path,
          reason: "ConfigFile",
          message: `${path} is not a vendorflow config: ${firstLine(error)}`
        })
    )
  )
  const selection: Selection = {
    adapters: file.adapters ?? [],
    vendors: Object.fromEntries(
      Object.entries(file.vendors ?? {}).map(([name, { adapter, ...options }]) => [name, { adapter, options }])
    )
  }
  return selection
})

/**
 * The selection from the environment: `VENDORFLOW_ADAPTERS` and the config file (at
 * `VENDORFLOW_CONFIG`, else `vendorflow.config.json` in the working directory if there is one);
 * when neither names anything, {@link defaultAdapters} in development and an error in production
 * (`NODE_ENV=production`).
 *
 * @category config
 */
export const selection = Effect.gen(function* () {
  const listed = yield* Config.String("VENDORFLOW_ADAPTERS").pipe(
    Config.withDefault(""),
    Config.map((text) =>
      text
        .split(",")
        .map((name) => name.trim())
        .filter((name) => name !== "")
    )
  )
  const configured = yield* Config.option(Config.String("VENDORFLOW_CONFIG"))
  const file = yield* readConfigFile(
    Option.getOrElse(configured, () => join(process.cwd(), configFileName)),
    Option.isSome(configured)
  )
  const adapters = [...new Set([...listed, ...file.adapters])]
  if (adapters.length > 0 || Object.keys(file.vendors).length > 0) {
    const chosen: Selection = { adapters, vendors: file.vendors }
    return chosen
  }
  const unnamed = `no adapter is named (VENDORFLOW_ADAPTERS, package names comma-separated, or "adapters" in ${configFileName})`
  if ((yield* Config.String("NODE_ENV").pipe(Config.withDefault("development"))) === "production") {
    return yield* fail("VENDORFLOW_ADAPTERS", "Unnamed", `${unnamed}; production loads no mock vendor`)
  }
  const missing = defaultAdapters.filter((name) => findPackageJson(name, [here, process.cwd()]) === undefined)
  if (missing.length > 0) {
    return yield* fail(
      "VENDORFLOW_ADAPTERS",
      "Unnamed",
      `${unnamed}, and the development default, the mock vendors, is not installed (npm install ${missing.join(" ")})`
    )
  }
  const chosen: Selection = { adapters: defaultAdapters, vendors: {} }
  return chosen
})

// Config errors span lines and wrap the schema's words; start-up failures are reported on one.
const settingsProblem = (vendor: string, error: Config.ConfigError): string =>
  `vendor ${vendor}: ${error.message.replace(/^SchemaError\(([\s\S]*)\)$/, "$1").replace(/\s*\n\s*/g, " ")}`

/**
 * The vendor registry over a selection: each definition loaded, checked and built with the
 * operator's `VENDOR_<NAME>_*` settings, routed by `DEFAULT_VENDOR` (which must name one of them).
 *
 * @category layers
 */
export const layerWith = (
  chosen: Selection
): Layer.Layer<VendorRegistry.VendorRegistry, AdapterError | Config.ConfigError | VendorRegistry.UnknownVendor> =>
  Layer.effect(
    VendorRegistry.VendorRegistry,
    Effect.gen(function* () {
      const definitions = yield* load(chosen)
      const vendors = yield* Effect.forEach(definitions, (definition) =>
        VendorDefinition.fromConfig(definition).pipe(
          Effect.mapError(
            (error) =>
              new AdapterError({
                adapter: definition.name,
                reason: "Settings",
                message: error._tag === "InvalidDefinition" ? error.message : settingsProblem(definition.name, error)
              })
          )
        )
      )
      yield* Effect.logInfo(`vendors: ${vendors.map((vendor) => vendor.name).join(", ")}`)
      return yield* VendorRegistry.make(vendors, yield* VendorRegistry.routingConfig)
    })
  )

/**
 * The vendor registry from the environment (see {@link selection}), calling vendors with undici.
 *
 * @category layers
 */
export const layer: Layer.Layer<
  VendorRegistry.VendorRegistry,
  AdapterError | Config.ConfigError | VendorRegistry.UnknownVendor
> = Layer.unwrap(Effect.map(selection, layerWith))
