/**
 * Loading adapters by package name: the real workspace packages (the mocks, the HTTP adapter, the
 * example adapter), fixture packages installed for the test into this package's `node_modules`
 * (built for another core, declaring none, exporting nothing usable), the config file, and the
 * server process refusing to start on a bad one with one line.
 */
import { spawn } from "node:child_process"
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { NodeHttpClient } from "@effect/platform-node"
import { VendorRegistry } from "@vendorflow/core"
import { ChildProcess } from "@vendorflow/core/testing"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Layer } from "effect"
import * as Adapters from "../src/Adapters.ts"

const env = (values: Record<string, string>) => ConfigProvider.layer(ConfigProvider.fromUnknown(values))

const namesOf = (selection: Adapters.Selection) =>
  Effect.map(Adapters.load(selection), (definitions) => definitions.map((definition) => definition.name))

const failureOf = (selection: Adapters.Selection) =>
  Effect.map(Effect.flip(Adapters.load(selection)), ({ message, reason }) => ({ reason, message }))

const only = (...adapters: ReadonlyArray<string>): Adapters.Selection => ({ adapters, vendors: {} })

// A package installed where the runtime imports from, for the life of the scope, with `files`
// (relative paths to contents) beside its package.json and index.js.
const installFixture = (name: string, packageJson: object, source: string, files: Record<string, string> = {}) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const dir = fileURLToPath(new URL(`../node_modules/${name}/`, import.meta.url))
      const contents = {
        "package.json": JSON.stringify({
          name,
          version: "2.0.0",
          type: "module",
          exports: "./index.js",
          ...packageJson
        }),
        "index.js": source,
        ...files
      }
      for (const [path, content] of Object.entries(contents)) {
        mkdirSync(join(dir, path, ".."), { recursive: true })
        writeFileSync(join(dir, path), content)
      }
      return name
    }),
    () =>
      Effect.sync(() =>
        rmSync(fileURLToPath(new URL(`../node_modules/${name}/`, import.meta.url)), { recursive: true, force: true })
      )
  )

const fixtureName = () => `@vendorflow-fixture/adapter-${crypto.randomUUID().slice(0, 8)}`

const restVendor = {
  adapter: "@vendorflow/adapter-http",
  options: { url: "https://rest.example", path: "/lookup", body: { q: "${payload.q}" }, result: "data" }
}

describe("Adapters.isCompatible", () => {
  it("compares the declared range's major line with the core's", () => {
    const cases: ReadonlyArray<readonly [string, string, boolean]> = [
      ["^0.1.0", "0.1.0", true],
      ["^0.1.0", "0.1.9", true],
      ["0.1.0", "0.1.4", true],
      ["~0.1.2", "0.1.0", true],
      ["^0.1.0", "0.2.0", false],
      ["^1.0.0", "0.1.0", false],
      ["^1.2.0", "1.9.3", true],
      [">=1.0.0 <2.0.0", "1.4.0", true],
      ["1.x", "1.0.0", true],
      ["^1.0.0", "2.0.0", false],
      ["^1.0.0 || ^2.0.0", "2.1.0", true],
      ["*", "3.0.0", true],
      ["workspace:*", "0.1.0", true],
      ["not a range", "0.1.0", false]
    ]
    for (const [range, version, expected] of cases) {
      assert.strictEqual(Adapters.isCompatible(range, version), expected, `${range} for ${version}`)
    }
  })
})

describe("Adapters.load", () => {
  it.effect("loads the adapter packages it is given, by name", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(yield* namesOf(only(...Adapters.defaultAdapters)), ["sync", "async"])
      assert.deepStrictEqual(yield* namesOf(only("@vendorflow/example-custom-adapter")), ["acme-credit"])
      assert.deepStrictEqual(yield* namesOf({ adapters: [], vendors: { rest: restVendor } }), ["rest"])
    })
  )

  it.effect("stops at a package that is not installed, saying how to install it", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(yield* failureOf(only("@vendorflow/adapter-mock-sync", "@acme/vendorflow-adapter-nope")), {
        reason: "Missing",
        message: "adapter @acme/vendorflow-adapter-nope is not installed (npm install @acme/vendorflow-adapter-nope)"
      })
    })
  )

  it.effect("stops at a package built for another major line of the core", () =>
    Effect.gen(function* () {
      const name = yield* installFixture(
        fixtureName(),
        { peerDependencies: { "@vendorflow/core": "^1.0.0" } },
        "export const vendors = []\n"
      )
      const { message, reason } = yield* failureOf(only(name))
      assert.strictEqual(reason, "Incompatible")
      assert.match(
        message,
        /^adapter @vendorflow-fixture\/adapter-\w+@2\.0\.0 was built for @vendorflow\/core \^1\.0\.0, but this is @vendorflow\/core 0\.1\.\d+; install a version of .* made for it$/
      )
    })
  )

  it.effect("refuses a package that brings its own copy of effect or of the core, in one line naming it", () =>
    Effect.gen(function* () {
      const peer = { peerDependencies: { "@vendorflow/core": "^0.1.0" } }
      for (const copied of ["effect", "@vendorflow/core"]) {
        const name = yield* installFixture(fixtureName(), peer, "export const vendors = []\n", {
          [`node_modules/${copied}/package.json`]: JSON.stringify({ name: copied, version: "4.0.0" })
        })
        const { message, reason } = yield* failureOf(only(name))
        assert.strictEqual(reason, "Incompatible")
        assert.notInclude(message, "\n")
        assert.match(
          message,
          new RegExp(
            `^adapter ${name} uses its own copy of ${copied} \\(.*/${name}/node_modules/${copied}\\), not the deployment's`
          )
        )
      }
    })
  )

  it.effect(
    "takes an exported coreVersion when package.json declares none, and refuses a package that declares nothing",
    () =>
      Effect.gen(function* () {
        const silent = yield* installFixture(fixtureName(), {}, "export const vendors = []\n")
        assert.deepStrictEqual(yield* failureOf(only(silent)), {
          reason: "Incompatible",
          message: `adapter ${silent} does not say which @vendorflow/core it was built for (add a peerDependency on @vendorflow/core)`
        })
        const exported = yield* installFixture(
          fixtureName(),
          {},
          `export const coreVersion = "^9.0.0"\nexport const vendors = []\n`
        )
        assert.match((yield* failureOf(only(exported))).message, /built for @vendorflow\/core \^9\.0\.0/)
      })
  )

  it.effect("stops at a package that exports nothing an adapter must", () =>
    Effect.gen(function* () {
      const peer = { peerDependencies: { "@vendorflow/core": "^0.1.0" } }
      const empty = yield* installFixture(fixtureName(), peer, "export const hello = 1\n")
      assert.deepStrictEqual(yield* failureOf(only(empty)), {
        reason: "Invalid",
        message: `adapter ${empty} exports neither "vendors" nor "configure"`
      })
      const handmade = yield* installFixture(
        fixtureName(),
        peer,
        `export const vendors = [{ name: "x", mode: "sync" }]\n`
      )
      assert.strictEqual(
        (yield* failureOf(only(handmade))).message,
        `adapter ${handmade} exports "vendors" that are not made with defineVendor`
      )
      const broken = yield* installFixture(fixtureName(), peer, "export const vendors = [\n")
      assert.match((yield* failureOf(only(broken))).message, new RegExp(`^adapter ${broken} could not be loaded: `))
      assert.deepStrictEqual(
        yield* failureOf({ adapters: [], vendors: { x: { adapter: "@vendorflow/adapter-mock-sync", options: {} } } }),
        {
          reason: "Invalid",
          message: `adapter @vendorflow/adapter-mock-sync cannot configure vendor "x" (no "configure")`
        }
      )
      assert.deepStrictEqual(yield* failureOf(only("@vendorflow/adapter-http")), {
        reason: "Invalid",
        message: `adapter @vendorflow/adapter-http provides no vendors itself; configure one under "vendors"`
      })
    })
  )

  it.effect("refuses two vendors with one name, and bad options for a configured one", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(
        yield* failureOf({ adapters: ["@vendorflow/adapter-mock-sync"], vendors: { sync: restVendor } }),
        {
          reason: "Duplicate",
          message: `two adapters provide a vendor named "sync"`
        }
      )
      const bad = yield* failureOf({ adapters: [], vendors: { rest: { ...restVendor, options: { url: "nope" } } } })
      assert.strictEqual(bad.reason, "Invalid")
      assert.match(bad.message, /^rest: the options of @vendorflow\/adapter-http are wrong/)
    })
  )
})

describe("Adapters.selection", () => {
  const withConfigFile = (content: string) =>
    Effect.acquireRelease(
      Effect.sync(() => {
        const dir = mkdtempSync(join(tmpdir(), "vendorflow-config-"))
        writeFileSync(join(dir, Adapters.configFileName), content)
        return join(dir, Adapters.configFileName)
      }),
      (path) => Effect.sync(() => rmSync(join(path, ".."), { recursive: true, force: true }))
    )

  it.effect("is the two mock vendors when nothing is configured", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(yield* Adapters.selection.pipe(Effect.provide(env({}))), {
        adapters: Adapters.defaultAdapters,
        vendors: {}
      })
    })
  )

  it.effect("is an error in production, which loads no mock vendor by default", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(Adapters.selection.pipe(Effect.provide(env({ NODE_ENV: "production" }))))
      assert.strictEqual(error._tag === "AdapterError" ? error.reason : error._tag, "Unnamed")
      assert.strictEqual(
        error.message,
        `no adapter is named (VENDORFLOW_ADAPTERS, package names comma-separated, or "adapters" in vendorflow.config.json); production loads no mock vendor`
      )
    })
  )

  it.effect("joins VENDORFLOW_ADAPTERS and the config file", () =>
    Effect.gen(function* () {
      const path = yield* withConfigFile(
        JSON.stringify({
          adapters: ["@vendorflow/example-custom-adapter"],
          vendors: { rest: { adapter: "@vendorflow/adapter-http", url: "https://rest.example", result: "data" } },
          somethingElse: true
        })
      )
      const chosen = yield* Adapters.selection.pipe(
        Effect.provide(
          env({
            VENDORFLOW_CONFIG: path,
            VENDORFLOW_ADAPTERS: " @vendorflow/adapter-mock-sync , @vendorflow/example-custom-adapter"
          })
        )
      )
      assert.deepStrictEqual(chosen, {
        adapters: ["@vendorflow/adapter-mock-sync", "@vendorflow/example-custom-adapter"],
        vendors: {
          rest: { adapter: "@vendorflow/adapter-http", options: { url: "https://rest.example", result: "data" } }
        }
      })
    })
  )

  it.effect("refuses a config file that is missing when named, or is not one", () =>
    Effect.gen(function* () {
      const missing = yield* Effect.flip(
        Adapters.selection.pipe(Effect.provide(env({ VENDORFLOW_CONFIG: "/nonexistent/vendorflow.config.json" })))
      )
      assert.strictEqual(missing.message, "/nonexistent/vendorflow.config.json does not exist (VENDORFLOW_CONFIG)")
      const path = yield* withConfigFile(`{ "adapters": "@acme/one" }`)
      const wrong = yield* Effect.flip(Adapters.selection.pipe(Effect.provide(env({ VENDORFLOW_CONFIG: path }))))
      assert.match(wrong.message, /is not a vendorflow config: Expected array/)
    })
  )
})

describe("Adapters.layer", () => {
  it.effect("gives the registry of the configured vendors, built with their VENDOR_<NAME>_* settings", () =>
    Effect.gen(function* () {
      const registry = yield* VendorRegistry.VendorRegistry
      assert.deepStrictEqual(
        registry.vendors.map((vendor) => vendor.name),
        ["acme-credit", "rest"]
      )
      const rest = yield* registry.get("rest")
      assert.strictEqual(rest.concurrency, 7)
      assert.strictEqual(Duration.toMillis(rest.timeout ?? Duration.zero), 1500)
    }).pipe(
      Effect.provide(
        Adapters.layerWith({ adapters: ["@vendorflow/example-custom-adapter"], vendors: { rest: restVendor } }).pipe(
          Layer.provide([
            NodeHttpClient.layerUndici,
            env({ VENDOR_ACME_CREDIT_API_KEY: "k", VENDOR_REST_CONCURRENCY: "7", VENDOR_REST_TIMEOUT: "1.5s" })
          ])
        )
      )
    )
  )

  it.effect("reports a vendor's unusable settings on one line", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        Layer.build(Adapters.layer).pipe(Effect.provide(env({ VENDOR_SYNC_RATE_LIMIT: "lots" })))
      )
      assert.strictEqual(
        error.message,
        `vendor sync: Expected a rate limit like "5/1s", "100/500ms", "5", "auto", "auto:50/1s" or "none" at ["VENDOR_SYNC_RATE_LIMIT"]`
      )
    })
  )
})

describe("the server process", () => {
  const bin = fileURLToPath(new URL("../../server/src/bin.ts", import.meta.url))

  // Runs the bin until it exits by itself, failing the test past the deadline instead of hanging it.
  const runToExit = (extra: Record<string, string>) =>
    Effect.callback<{ readonly code: number | null; readonly output: string }>((resume) => {
      const child = spawn(process.execPath, ["--conditions=@vendorflow/source", bin], {
        env: { ...process.env, PORT: "0", ...extra },
        stdio: ["ignore", "pipe", "pipe"]
      })
      let output = ""
      child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()))
      child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()))
      child.once("exit", (code) => resume(Effect.succeed({ code, output })))
      return Effect.sync(() => child.kill("SIGKILL"))
    }).pipe(Effect.timeoutOrElse({ duration: "15 seconds", orElse: () => Effect.die("the server did not exit") }))

  it.live("loads an adapter package by name and lists its vendor", () =>
    Effect.gen(function* () {
      const server = yield* ChildProcess.start(bin, {
        PORT: "0",
        VENDORFLOW_ADAPTERS: "@vendorflow/example-custom-adapter",
        VENDOR_ACME_CREDIT_API_KEY: "k"
      })
      const [, url] = yield* server.waitFor(/Listening on (http:\/\/[^\s"]+)/)
      const health = yield* Effect.promise(() =>
        fetch(`${url}/health`).then((r) => r.json() as Promise<{ vendors: Array<string> }>)
      )
      assert.deepStrictEqual(health.vendors, ["acme-credit"])
      assert.strictEqual(yield* server.stop("SIGTERM"), 0)
    })
  )

  it.live("in production, stops at start-up with one line when no adapter is named", () =>
    Effect.gen(function* () {
      const { code, output } = yield* runToExit({ NODE_ENV: "production" })
      assert.strictEqual(code, 1)
      assert.strictEqual(
        output.trim(),
        `vendorflow-server: no adapter is named (VENDORFLOW_ADAPTERS, package names comma-separated, or "adapters" in vendorflow.config.json); production loads no mock vendor`
      )
    })
  )

  it.live("stops at start-up with one line naming a missing or incompatible adapter", () =>
    Effect.gen(function* () {
      const name = yield* installFixture(
        fixtureName(),
        { peerDependencies: { "@vendorflow/core": "^3.1.0" } },
        "export const vendors = []\n"
      )
      for (const [adapters, line] of [
        [
          "@acme/vendorflow-adapter-nope",
          "vendorflow-server: adapter @acme/vendorflow-adapter-nope is not installed (npm install @acme/vendorflow-adapter-nope)"
        ],
        [
          name,
          `vendorflow-server: adapter ${name}@2.0.0 was built for @vendorflow/core ^3.1.0, but this is @vendorflow/core 0.1.0; install a version of ${name} made for it`
        ]
      ] as const) {
        const { code, output } = yield* runToExit({ VENDORFLOW_ADAPTERS: adapters })
        assert.strictEqual(code, 1)
        assert.strictEqual(output.trim(), line)
      }
    })
  )
})
