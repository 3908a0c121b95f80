/**
 * The example stack (`docker-compose.yml`, `Dockerfile`) checked against the code, since no Docker
 * engine runs here: the services are there with pinned images, health checks and the right ports;
 * every variable the stack sets is one the code reads (names collected from the sources); the
 * settings that services must agree on (URLs, the webhook secret, rate limits) do; each command
 * runs a bin a package declares; and the image's Node major is the one in `.nvmrc`.
 */
import { assert, describe, it } from "@effect/vitest"
import { existsSync, readdirSync, readFileSync } from "node:fs"
import { join, relative } from "node:path"
import { fileURLToPath } from "node:url"
import { parse } from "yaml"

const root = fileURLToPath(new URL("../../../", import.meta.url))
const read = (path: string) => readFileSync(join(root, path), "utf8")

// ---------------------------------------------------------------------------------------------
// The compose file, narrowed from `unknown` to what these tests read
// ---------------------------------------------------------------------------------------------

interface Service {
  readonly name: string
  readonly image: string | undefined
  readonly build: boolean
  readonly command: ReadonlyArray<string>
  readonly environment: Readonly<Record<string, string>>
  readonly ports: ReadonlyArray<string>
  readonly containerName: string | undefined
  readonly profiles: ReadonlyArray<string>
  readonly healthcheck: ReadonlyArray<string> | undefined
  readonly dependsOn: Readonly<Record<string, string>>
  readonly volumes: ReadonlyArray<string>
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

const strings = (value: unknown): ReadonlyArray<string> =>
  Array.isArray(value) ? value.map(String) : typeof value === "string" ? [value] : []

// Compose substitutes `${NAME:-default}` from the shell; with nothing set, the default is the value.
// `${NAME:?message}` must be set: it reads as the name, a value only the shell gives.
const interpolate = (value: string) =>
  value
    .replace(/\$\{([A-Z0-9_]+):\?[^}]*\}/g, (_, name: string) => `<${name}>`)
    .replace(/\$\{([A-Z0-9_]+)(?::?-([^}]*))?\}/g, (_, _name, fallback) => fallback ?? "")

const environmentOf = (value: unknown): Record<string, string> => {
  if (Array.isArray(value)) {
    return Object.fromEntries(
      value.map(String).map((entry) => [entry.split("=")[0] ?? "", interpolate(entry.split("=").slice(1).join("="))])
    )
  }
  return isRecord(value) ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolate(String(v))])) : {}
}

const serviceOf = (name: string, value: unknown): Service => {
  const service = isRecord(value) ? value : {}
  const healthcheck = isRecord(service["healthcheck"]) ? strings(service["healthcheck"]["test"]) : undefined
  const dependsOn = service["depends_on"]
  return {
    name,
    image: typeof service["image"] === "string" ? service["image"] : undefined,
    build: service["build"] !== undefined,
    command: strings(service["command"]),
    environment: environmentOf(service["environment"]),
    ports: strings(service["ports"]),
    containerName: typeof service["container_name"] === "string" ? service["container_name"] : undefined,
    profiles: strings(service["profiles"]),
    healthcheck,
    dependsOn: Array.isArray(dependsOn)
      ? Object.fromEntries(dependsOn.map((dependency) => [String(dependency), "service_started"]))
      : isRecord(dependsOn)
        ? Object.fromEntries(
            Object.entries(dependsOn).map(([dependency, how]) => [
              dependency,
              isRecord(how) ? String(how["condition"]) : "service_started"
            ])
          )
        : {},
    volumes: strings(service["volumes"])
  }
}

const compose: unknown = parse(read("docker-compose.yml"), { merge: true })
const services: ReadonlyMap<string, Service> = new Map(
  Object.entries(isRecord(compose) && isRecord(compose["services"]) ? compose["services"] : {}).map(([name, value]) => [
    name,
    serviceOf(name, value)
  ])
)
const service = (name: string): Service => {
  const found = services.get(name)
  if (found === undefined) throw new Error(`docker-compose.yml has no service ${name}`)
  return found
}
/** The services built from this repository's Dockerfile: the vendorflow processes. */
const appServices = [...services.values()].filter((s) => s.build)
/** The services that run until stopped: all but those behind a profile (the one-shot k6 run). */
const longRunning = [...services.values()].filter((s) => s.profiles.length === 0)

// ---------------------------------------------------------------------------------------------
// What the code reads
// ---------------------------------------------------------------------------------------------

const sourceFiles = (dir: string): ReadonlyArray<string> =>
  readdirSync(join(root, dir), { recursive: true, encoding: "utf8" })
    .map((path) => join(dir, path))
    .filter((path) => /\/src\/.*\.ts$/.test(path) && !/node_modules|\/dist\//.test(path))

// `Config.String("NAME")` and the like, `Config.schema(codec, "NAME")`, `Port.config("NAME")`, and
// the helpers named `…Config("NAME")` (`rateLimitConfig`, `vendorRateLimitConfig`).
const configPatterns = [
  /\bConfig\.(?!schema\b)[A-Za-z]+\(\s*"([A-Z][A-Z0-9_]*)"/g,
  /\bConfig\.schema\([^;]*?,\s*"([A-Z][A-Z0-9_]*)"\s*\)/g,
  /\bPort\.config\(\s*"([A-Z][A-Z0-9_]*)"/g,
  /\b[a-z][A-Za-z]*Config\(\s*"([A-Z][A-Z0-9_]*)"/g
]

const readByCode: ReadonlyMap<string, ReadonlyArray<string>> = (() => {
  const names = new Map<string, Array<string>>()
  for (const file of sourceFiles("packages")) {
    const text = read(file)
    for (const pattern of configPatterns) {
      for (const match of text.matchAll(pattern)) {
        const name = match[1] ?? ""
        names.set(name, [...(names.get(name) ?? []), relative(root, join(root, file))])
      }
    }
  }
  return names
})()

// The k6 scripts read `__ENV["NAME"]` or `__ENV.NAME`.
const readByK6 = new Set(
  readdirSync(join(root, "load"))
    .filter((file) => file.endsWith(".js"))
    .flatMap((file) => [...read(join("load", file)).matchAll(/__ENV(?:\["([A-Z0-9_]+)"\]|\.([A-Z0-9_]+))/g)])
    .map((match) => match[1] ?? match[2] ?? "")
)

const portOf = (s: Service) => s.environment["PORT"]

describe("docker-compose.yml", () => {
  it("collects the variables from the code (the collector itself works)", () => {
    for (const name of ["REDIS_URL", "MONGODB_URI", "PORT", "HOST", "PUBLIC_URL", "WEBHOOK_SECRET", "MOCK_SYNC_URL"]) {
      assert.isTrue(readByCode.has(name), `${name} not found in packages/**/src`)
    }
    assert.isTrue(readByK6.has("BASE_URL"))
  })

  it("has the stack's services", () => {
    assert.deepStrictEqual(
      [...services.keys()].sort(),
      ["api", "k6", "mock-async", "mock-sync", "mongo", "redis", "worker"].sort()
    )
  })

  it("pins every image: a version tag, never latest or none", () => {
    for (const s of services.values()) {
      assert.isDefined(s.image, `${s.name} names no image`)
      const [, tag] = /^[^:@]+(?::([^@]+))?(?:@sha256:[0-9a-f]{64})?$/.exec(s.image ?? "") ?? []
      assert.isDefined(tag, `${s.name}: ${s.image} has no tag`)
      assert.notStrictEqual(tag, "latest", `${s.name}: ${s.image}`)
      assert.match(tag ?? "", /^\d+(\.\d+)*(-[a-z0-9.-]+)?$/, `${s.name}: ${s.image} is not a version tag`)
    }
    assert.match(service("mongo").image ?? "", /^mongo:8(\.|$)/)
    assert.match(service("redis").image ?? "", /^redis:7(\.|$)/)
    assert.match(service("k6").image ?? "", /^grafana\/k6:/)
  })

  it("keeps Redis's append-only file on and its data and MongoDB's on named volumes", () => {
    const redis = service("redis")
    assert.includeMembers([...redis.command], ["--appendonly", "yes"])
    const volumes = isRecord(compose) && isRecord(compose["volumes"]) ? Object.keys(compose["volumes"]) : []
    for (const [name, path] of [
      ["mongo", "/data/db"],
      ["redis", "/data"]
    ] as const) {
      const volume =
        service(name)
          .volumes.find((v) => v.endsWith(`:${path}`))
          ?.split(":")[0] ?? ""
      assert.include(volumes, volume, `${name}'s ${path} is on a named volume`)
    }
  })

  it("publishes the API on 8000 and lets the worker scale: no fixed name, no ports", () => {
    const api = service("api")
    assert.include(api.ports, `${portOf(api)}:${portOf(api)}`)
    assert.strictEqual(portOf(api), "8000")
    const worker = service("worker")
    assert.isUndefined(worker.containerName)
    assert.deepStrictEqual(worker.ports, [])
  })

  it("has a health check on every long-running service, and the HTTP ones ask /health on their own port", () => {
    for (const s of longRunning) assert.isDefined(s.healthcheck, `${s.name} has no health check`)
    for (const name of ["api", "mock-sync", "mock-async"]) {
      const s = service(name)
      assert.strictEqual(s.healthcheck?.[1], "node", `${name}: checked with node (no curl in the slim image)`)
      assert.include(s.healthcheck?.join(" "), `http://127.0.0.1:${portOf(s)}/health`)
      assert.strictEqual(s.environment["HOST"], "0.0.0.0", `${name} listens beyond its container`)
    }
  })

  it("waits for dependencies to be healthy, and only on ones that have a health check", () => {
    for (const s of services.values()) {
      for (const [dependency, condition] of Object.entries(s.dependsOn)) {
        assert.strictEqual(condition, "service_healthy", `${s.name} → ${dependency}`)
        assert.isDefined(service(dependency).healthcheck, `${s.name} waits on ${dependency}, which has no check`)
      }
    }
    assert.includeMembers(Object.keys(service("worker").dependsOn), ["redis", "mongo", "mock-sync", "mock-async"])
    assert.includeMembers(Object.keys(service("api").dependsOn), ["redis", "mongo"])
  })

  it("sets only variables the code reads", () => {
    for (const s of appServices) {
      for (const name of Object.keys(s.environment)) {
        assert.isTrue(readByCode.has(name), `${s.name} sets ${name}, which nothing in packages/**/src reads`)
      }
    }
    for (const name of Object.keys(service("k6").environment)) {
      assert.isTrue(readByK6.has(name), `k6 sets ${name}, which no script in load/ reads`)
    }
  })

  it("gives API and workers the same backends, and points them at services that exist", () => {
    const api = service("api")
    const worker = service("worker")
    for (const name of ["REDIS_URL", "MONGODB_URI", "MONGODB_DB", "MOCK_SYNC_URL", "MOCK_ASYNC_URL"]) {
      assert.isDefined(worker.environment[name], `worker: ${name}`)
      assert.strictEqual(api.environment[name], worker.environment[name], name)
    }
    assert.strictEqual(new URL(worker.environment["REDIS_URL"] ?? "").hostname, "redis")
    assert.strictEqual(new URL(worker.environment["MONGODB_URI"] ?? "").hostname, "mongo")
    assert.strictEqual(worker.environment["MOCK_SYNC_URL"], `http://mock-sync:${portOf(service("mock-sync"))}`)
    assert.strictEqual(worker.environment["MOCK_ASYNC_URL"], `http://mock-async:${portOf(service("mock-async"))}`)
  })

  it("sends async vendors' webhooks to the API and signs them with the secret the API checks", () => {
    assert.strictEqual(service("worker").environment["PUBLIC_URL"], `http://api:${portOf(service("api"))}`)
    const secret = service("api").environment["WEBHOOK_SECRET"]
    assert.isDefined(secret)
    for (const name of ["worker", "mock-async"]) {
      assert.strictEqual(service(name).environment["WEBHOOK_SECRET"], secret, `${name}'s WEBHOOK_SECRET is the API's`)
    }
    assert.strictEqual(
      service("worker").environment["CALLBACK_TOKEN_SECRET"],
      service("api").environment["CALLBACK_TOKEN_SECRET"],
      "the workers make callback tokens with the secret the API checks them with"
    )
  })

  it("takes both secrets from the shell, with no default: the image runs with NODE_ENV=production", () => {
    for (const name of ["api", "worker"]) {
      assert.strictEqual(service(name).environment["WEBHOOK_SECRET"], "<WEBHOOK_SECRET>", name)
      assert.strictEqual(service(name).environment["CALLBACK_TOKEN_SECRET"], "<CALLBACK_TOKEN_SECRET>", name)
    }
  })

  it("tells each mock vendor and the workers the same rate limit", () => {
    const worker = service("worker")
    assert.strictEqual(
      worker.environment["MOCK_SYNC_RATE_LIMIT"],
      service("mock-sync").environment["MOCK_SYNC_RATE_LIMIT"]
    )
    assert.strictEqual(
      worker.environment["MOCK_ASYNC_RATE_LIMIT"],
      service("mock-async").environment["MOCK_ASYNC_RATE_LIMIT"]
    )
  })

  it("runs, in each app service, a bin that a package declares", () => {
    const bins = new Set(
      ["packages/server", "packages/worker", "packages/adapters/mock-sync", "packages/adapters/mock-async"].flatMap(
        (dir) => {
          const manifest: unknown = JSON.parse(read(`${dir}/package.json`))
          const declared = isRecord(manifest) && isRecord(manifest["bin"]) ? Object.values(manifest["bin"]) : []
          return declared.map((path) => join(dir, String(path)))
        }
      )
    )
    const commands = new Map<string, string>()
    for (const s of appServices) {
      assert.strictEqual(s.command[0], "node", `${s.name} runs node`)
      // Node's own options (`--…`) come between node and the bin.
      const entry = s.command.find((arg, i) => i > 0 && !arg.startsWith("--")) ?? ""
      assert.isTrue(bins.has(join(entry)), `${s.name} runs ${entry}, which is no package's bin`)
      const source = entry.replace("/dist/src/", "/src/").replace(/\.js$/, ".ts")
      assert.isTrue(existsSync(join(root, source)), `${entry} is built from ${source}`)
      commands.set(s.name, entry)
    }
    assert.strictEqual(commands.get("api"), "packages/server/dist/src/bin.js")
    assert.strictEqual(commands.get("worker"), "packages/worker/dist/src/bin.js")
  })

  it("runs the API as the image's CMD does, with the same Node options", () => {
    const cmd = /^CMD (\[.*\])$/m.exec(read("Dockerfile"))?.[1]
    assert.isDefined(cmd, "the Dockerfile has a CMD in exec form")
    assert.deepStrictEqual(service("api").command, JSON.parse(cmd ?? "[]"))
  })

  it("names the adapters in the API and the workers, as production requires", () => {
    for (const name of ["api", "worker"]) {
      assert.strictEqual(
        service(name).environment["VENDORFLOW_ADAPTERS"],
        "@vendorflow/adapter-mock-sync,@vendorflow/adapter-mock-async"
      )
    }
  })

  it("runs the k6 scenario from load/ against the API", () => {
    const k6 = service("k6")
    assert.deepStrictEqual(k6.profiles, ["load"])
    assert.include(k6.volumes, "./load:/load:ro")
    const script = k6.command.find((arg) => arg.startsWith("/load/")) ?? ""
    assert.isTrue(existsSync(join(root, script.replace(/^\/load\//, "load/"))), script)
    assert.strictEqual(k6.environment["BASE_URL"], `http://api:${portOf(service("api"))}`)
  })
})

describe("docs/operations.md", () => {
  it("documents every variable the code reads", () => {
    const documented = read("docs/operations.md")
    const missing = [...readByCode.keys()].filter((name) => !documented.includes(`\`${name}\``)).sort()
    assert.deepStrictEqual(missing, [])
  })
})

describe("Dockerfile", () => {
  const dockerfile = read("Dockerfile")

  it("is on the Node major of .nvmrc, a pinned slim image", () => {
    const major = read(".nvmrc").trim().replace(/^v/, "").split(".")[0]
    const images = [...dockerfile.matchAll(/\bnode:([0-9][^\s]*)/g)].map((match) => match[1] ?? "")
    assert.isAbove(images.length, 0, "names a node image")
    for (const tag of images) {
      assert.match(tag, /^\d+\.\d+(\.\d+)?-slim$/, `node:${tag} is pinned to a minor, slim`)
      assert.strictEqual(tag.split(".")[0], major, `node:${tag} against .nvmrc ${major}`)
    }
    assert.notMatch(dockerfile, /:latest\b/)
  })

  it("installs what the lock file says, builds, and runs the built JS as the node user, with no condition", () => {
    assert.match(dockerfile, /npm ci\b/)
    assert.match(dockerfile, /tsc -b/)
    assert.match(dockerfile, /^USER node$/m)
    assert.notInclude(dockerfile, "--conditions")
  })

  it("runs the API by default", () => {
    assert.match(dockerfile, /^CMD \["node", "--max-semi-space-size=16", "packages\/server\/dist\/src\/bin\.js"\]$/m)
  })
})
