/**
 * `npm run test:packed`: vendorflow as a user gets it, from packed tarballs in a fresh app.
 *
 * 1. Packs every public package (`npm pack`, whose `prepack` builds it) and, as a third party
 *    would, `examples/custom-adapter`, into a temp folder; prints each tarball's file count and
 *    size, and checks each shipped manifest: no export condition, every `exports` target and `bin`
 *    built JS in the tarball, `effect` a peer, a README and a LICENSE, no database driver forced on
 *    server, worker or runtime.
 * 2. Makes a fresh app outside the workspace (its own package.json, no lock file from here) and
 *    installs the tarballs with plain `npm install`; `npm ls effect` must show one copy.
 * 3. Type-checks the app's programs with `tsc --noEmit` (strict, NodeNext, no skipLibCheck) under
 *    TypeScript 5.9 and 7: `examples/embedded` (the Promise facade with a vendor of its own, and
 *    `Vendorflow.layer`), the example adapter's AdapterSuite, and every code block of the READMEs
 *    and docs marked `<!-- runs: <file> -->` or `<!-- checks: <file> -->`. Runs the examples with
 *    plain `node` to completed, cleaned jobs, and the test files (the AdapterSuite, the adapter
 *    guide's) with vitest.
 * 4. Starts the installed bins from `node_modules/.bin` as a user would (both mock vendors,
 *    `vendorflow-server`, `vendorflow-worker`, on free ports, on Redis under a key prefix of its
 *    own, with the example adapter named in `VENDORFLOW_ADAPTERS`); a sync, an async and an Acme
 *    Credit job complete, `/ui/` answers 200; then runs the marked doc blocks against them (their
 *    `127.0.0.1:8000` is the server, `:8001` the sync vendor), and stops everything with SIGTERM
 *    (each must exit 0). Then `vendorflow`, the standalone bin, completes a sync job.
 *
 * Everything it started is stopped and its temp folder and Redis keys are removed at the end, pass
 * or fail (`--keep` keeps the folder). `REDIS_URL` picks the Redis (default 127.0.0.1:6379).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync
} from "node:fs"
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { stripVTControlCharacters } from "node:util"

const root = fileURLToPath(new URL("../../", import.meta.url))
const keep = process.argv.includes("--keep")
const redisUrl = process.env["REDIS_URL"] ?? "redis://127.0.0.1:6379"
const started = Date.now()

const say = (line: string) => console.log(`test:packed [${((Date.now() - started) / 1000).toFixed(0)}s] ${line}`)

class Failure extends Error {}
const check = (condition: boolean, message: string) => {
  if (!condition) throw new Failure(message)
}

/** Runs a command to its end; its output, or a failure that shows it. */
const run = (command: string, args: ReadonlyArray<string>, cwd: string, env: NodeJS.ProcessEnv = {}): string => {
  try {
    return execFileSync(command, args, {
      cwd,
      env: { ...process.env, ...env },
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
      maxBuffer: 64 * 1024 * 1024
    })
  } catch (error) {
    const { stdout = "", stderr = "" } = error as { stdout?: string; stderr?: string }
    throw new Failure(`${command} ${args.join(" ")} (in ${cwd}) failed:\n${stdout}${stderr}`)
  }
}

// ---------------------------------------------------------------------------------------------
// 1. Pack
// ---------------------------------------------------------------------------------------------

interface Manifest {
  readonly name: string
  readonly private?: boolean
  readonly bin?: Readonly<Record<string, string>>
  readonly exports?: unknown
  readonly dependencies?: Readonly<Record<string, string>>
  readonly peerDependencies?: Readonly<Record<string, string>>
}

const readManifest = (path: string) => JSON.parse(readFileSync(path, "utf8")) as Manifest

/** The workspace folders whose package is public. */
const publicPackages = (): Array<string> => {
  const { workspaces } = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { workspaces: Array<string> }
  return workspaces
    .flatMap((pattern) =>
      pattern.endsWith("/*")
        ? readdirSync(join(root, pattern.slice(0, -2)), { withFileTypes: true })
            .filter((entry) => entry.isDirectory())
            .map((entry) => `${pattern.slice(0, -2)}/${entry.name}`)
        : [pattern]
    )
    .filter(
      (dir) =>
        existsSync(join(root, dir, "package.json")) && readManifest(join(root, dir, "package.json")).private !== true
    )
}

const targets = (exports: unknown): Array<string> =>
  typeof exports === "string"
    ? [exports]
    : typeof exports === "object" && exports !== null
      ? Object.values(exports).flatMap(targets)
      : []

interface Tarball {
  readonly path: string
  readonly manifest: Manifest
  readonly files: ReadonlyArray<string>
}

const inspect = (path: string): Tarball => {
  const files = run("tar", ["-tzf", path], root)
    .split("\n")
    .filter((line) => line !== "" && !line.endsWith("/"))
    .map((line) => line.replace(/^package\//, ""))
  const manifest = JSON.parse(run("tar", ["-xzf", path, "-O", "package/package.json"], root)) as Manifest
  return { path, manifest, files }
}

const checkTarball = ({ manifest, files }: Tarball) => {
  const { name } = manifest
  const text = JSON.stringify(manifest)
  check(!text.includes("@vendorflow/source"), `${name}: the shipped manifest has the @vendorflow/source condition`)
  for (const entry of [...targets(manifest.exports), ...Object.values(manifest.bin ?? {})]) {
    const file = entry.replace(/^\.\//, "")
    check(/\.(js|d\.ts)$/.test(file) && files.includes(file), `${name}: ${entry} is not built JS in the tarball`)
  }
  check(manifest.dependencies?.["effect"] === undefined, `${name}: effect is a dependency, not a peer`)
  for (const file of ["README.md", "LICENSE"]) check(files.includes(file), `${name}: no ${file} in the tarball`)
  if (["@vendorflow/server", "@vendorflow/worker", "@vendorflow/runtime"].includes(name)) {
    for (const driver of ["@vendorflow/redis", "@vendorflow/mongo", "@vendorflow/sqlite", "ioredis", "mongodb"]) {
      check(manifest.dependencies?.[driver] === undefined, `${name}: depends on ${driver}, a backend it must not force`)
    }
  }
}

const pack = (destination: string): Array<Tarball> => {
  const dirs = publicPackages()
  say(`packing ${dirs.length} packages and examples/custom-adapter`)
  mkdirSync(destination)
  run("npm", ["pack", "--pack-destination", destination, ...dirs.map((dir) => `--workspace=${dir}`)], root)
  run("npm", ["pack", "--pack-destination", destination], join(root, "examples/custom-adapter"))
  const tarballs = readdirSync(destination)
    .filter((file) => file.endsWith(".tgz"))
    .map((file) => inspect(join(destination, file)))
  check(tarballs.length === dirs.length + 1, `expected ${dirs.length + 1} tarballs, found ${tarballs.length}`)
  console.log("\n  tarball                                         files     size")
  for (const tarball of tarballs) {
    const kb = (statSync(tarball.path).size / 1024).toFixed(1)
    console.log(
      `  ${tarball.path.split("/").pop()?.padEnd(46)} ${String(tarball.files.length).padStart(6)} ${kb.padStart(7)} kB`
    )
    checkTarball(tarball)
  }
  console.log("")
  return tarballs
}

// ---------------------------------------------------------------------------------------------
// 2. The fresh app
// ---------------------------------------------------------------------------------------------

const makeApp = (app: string, tarballs: ReadonlyArray<Tarball>) => {
  mkdirSync(app, { recursive: true })
  const dependencies = Object.fromEntries(tarballs.map((t) => [t.manifest.name, `file:${t.path}`]))
  writeFileSync(
    join(app, "package.json"),
    JSON.stringify(
      {
        name: "vendorflow-packed-app",
        private: true,
        type: "module",
        dependencies: { ...dependencies, effect: "^4.1.0", "@effect/platform-node": "^4.1.0" },
        devDependencies: {
          "@effect/vitest": "^4.0.5",
          "@types/node": "^24.0.0",
          typescript: "~5.9.3",
          "typescript-7": "npm:typescript@^7.0.2",
          vitest: "^5.1.1"
        }
      },
      null,
      2
    )
  )
  say("npm install in the fresh app")
  run("npm", ["install", "--no-audit", "--no-fund"], app)
  const tree = run("npm", ["ls", "effect"], app)
  console.log(`\n$ npm ls effect\n${tree}`)
  const copies = new Set(
    run("npm", ["ls", "effect", "--all", "--parseable"], app)
      .split("\n")
      .filter((l) => l !== "")
  )
  check(copies.size === 1, `the app has ${copies.size} copies of effect:\n${[...copies].join("\n")}`)
}

interface Block {
  /** `runs`: type-checked, then run with node against the stack; `checks`: type-checked (and run by vitest when a test). */
  readonly mode: "runs" | "checks"
  readonly file: string
  readonly source: string
  readonly code: string
}

/** The code blocks of the READMEs and docs marked `<!-- runs: <file> -->` or `<!-- checks: <file> -->`. */
const docBlocks = (): Array<Block> => {
  const documents = [
    "README.md",
    ...readdirSync(join(root, "docs"))
      .filter((f) => f.endsWith(".md"))
      .map((f) => `docs/${f}`),
    ...publicPackages().map((dir) => `${dir}/README.md`)
  ].filter((path) => existsSync(join(root, path)))
  return documents.flatMap((source) =>
    [...readFileSync(join(root, source), "utf8").matchAll(/<!-- (runs|checks): (\S+) -->\n```ts\n([\s\S]*?)```/g)].map(
      ([, mode, file = "", code = ""]) => ({
        mode: mode === "runs" ? ("runs" as const) : ("checks" as const),
        file,
        source,
        code
      })
    )
  )
}

// No skipLibCheck, so that the declarations we ship are checked too; the DOM lib only because
// effect's own declarations name DOM types (`Transferable`).
const tsconfig = {
  compilerOptions: {
    target: "ES2023",
    lib: ["ES2023", "DOM"],
    module: "NodeNext",
    moduleResolution: "NodeNext",
    types: ["node"],
    strict: true,
    exactOptionalPropertyTypes: true,
    noUncheckedIndexedAccess: true,
    verbatimModuleSyntax: true,
    allowImportingTsExtensions: true,
    noEmit: true,
    skipLibCheck: false
  },
  include: ["*.ts", "docs/**/*.ts", "adapter-test/*.ts"]
}

/** The programs: the embedded examples, the example adapter's suite, the marked doc blocks. */
const writePrograms = (app: string, blocks: ReadonlyArray<Block>) => {
  cpSync(join(root, "examples/embedded/src/main.ts"), join(app, "embedded.ts"))
  cpSync(join(root, "examples/embedded/src/effect.ts"), join(app, "embedded-effect.ts"))
  mkdirSync(join(app, "adapter-test"))
  cpSync(
    join(root, "examples/custom-adapter/test/AcmeCreditSimulator.ts"),
    join(app, "adapter-test/AcmeCreditSimulator.ts")
  )
  const suite = readFileSync(join(root, "examples/custom-adapter/test/AcmeCredit.test.ts"), "utf8")
  check(suite.includes(`"../src/index.ts"`), "AcmeCredit.test.ts no longer imports ../src/index.ts")
  writeFileSync(
    join(app, "adapter-test/AcmeCredit.test.ts"),
    suite.replace(`"../src/index.ts"`, `"@vendorflow/example-custom-adapter"`)
  )
  for (const block of blocks) {
    mkdirSync(join(app, "docs", block.file, ".."), { recursive: true })
    writeFileSync(join(app, "docs", block.file), block.code)
  }
  writeFileSync(join(app, "tsconfig.json"), JSON.stringify(tsconfig, null, 2))
}

const typeCheck = (app: string) => {
  for (const [label, tsc] of [
    ["TypeScript 5.9", "node_modules/typescript/bin/tsc"],
    ["TypeScript 7", "node_modules/typescript-7/bin/tsc"]
  ] as const) {
    const version = run(process.execPath, [tsc, "--version"], app).trim()
    say(`tsc --noEmit under ${label} (${version})`)
    run(process.execPath, [tsc, "-p", "."], app)
  }
}

// ---------------------------------------------------------------------------------------------
// 3. The installed bins
// ---------------------------------------------------------------------------------------------

interface Running {
  readonly name: string
  readonly child: ChildProcess
  readonly output: () => string
}

const running: Array<Running> = []

const start = (app: string, bin: string, env: NodeJS.ProcessEnv): Running => {
  const child = spawn(join(app, "node_modules/.bin", bin), [], {
    cwd: app,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"]
  })
  let output = ""
  child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()))
  child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()))
  const process_ = { name: bin, child, output: () => output }
  running.push(process_)
  return process_
}

const sleep = (millis: number) => new Promise((resolve) => setTimeout(resolve, millis))

/** Polls `probe` until it gives a value, failing with `what` past `millis`. */
const eventually = async <A>(what: string, probe: () => Promise<A | undefined> | A | undefined, millis = 30_000) => {
  const deadline = Date.now() + millis
  while (Date.now() < deadline) {
    const value = await probe()
    if (value !== undefined) return value
    await sleep(50)
  }
  throw new Failure(`${what}: nothing within ${millis / 1000} s`)
}

const waitFor = (process_: Running, pattern: RegExp) =>
  eventually(`${process_.name} printing ${pattern}`, () => {
    if (process_.child.exitCode !== null) {
      throw new Failure(`${process_.name} exited ${process_.child.exitCode}:\n${process_.output()}`)
    }
    return pattern.exec(process_.output())?.[1]
  })

const stop = async (process_: Running) => {
  if (process_.child.exitCode !== null || process_.child.signalCode !== null) return process_.child.exitCode
  const exited = new Promise<number | null>((resolve) => process_.child.once("exit", (code) => resolve(code)))
  process_.child.kill("SIGTERM")
  const timer = setTimeout(() => process_.child.kill("SIGKILL"), 15_000)
  const code = await exited
  clearTimeout(timer)
  return code
}

/** A tiny Acme Credit for the example adapter, answering as its simulator does. */
const acme = async (): Promise<{ readonly url: string; readonly server: Server }> => {
  const server = createServer((request, response) => {
    let body = ""
    request.on("data", (chunk: Buffer) => (body += chunk.toString()))
    request.on("end", () => {
      const { company = "", reference = "" } = JSON.parse(body) as { company?: string; reference?: string }
      const ok = request.headers["x-acme-key"] === "acme-packed-key"
      response.writeHead(ok ? 200 : 401, { "content-type": "application/json" })
      response.end(
        JSON.stringify(
          ok
            ? {
                check: {
                  id: `chk_${reference.slice(0, 8)}`,
                  score: 640,
                  band: "B",
                  applicant: { name: ` ${company} Treasurer `, tax_id: "TX-1", email: "treasurer@acme.example" }
                }
              }
            : { error: { code: "BAD_KEY" } }
        )
      )
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server }
}

interface JobView {
  readonly request_id: string
  readonly status: string
  readonly result?: unknown
  readonly error?: unknown
}

const completes = async (api: string, payload: object) => {
  const submitted = await fetch(`${api}/jobs`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(payload)
  })
  const body = await submitted.text()
  check(submitted.status === 200, `POST /jobs ${JSON.stringify(payload)}: ${submitted.status} ${body}`)
  const { request_id } = JSON.parse(body) as { request_id: string }
  const job = await eventually(`job ${JSON.stringify(payload)} finishing`, async () => {
    const view = (await (await fetch(`${api}/jobs/${request_id}`)).json()) as JobView
    return view.status === "complete" || view.status === "failed" ? view : undefined
  })
  check(job.status === "complete", `job ${JSON.stringify(payload)} ended ${job.status}: ${JSON.stringify(job.error)}`)
  check(!JSON.stringify(job.result).includes("@"), `job ${JSON.stringify(payload)} kept an e-mail address`)
  return job
}

const deleteKeys = (prefix: string) => {
  const keys = run("redis-cli", ["-u", redisUrl, "--scan", "--pattern", `${prefix}*`], root)
    .split("\n")
    .filter((key) => key !== "")
  for (let i = 0; i < keys.length; i += 500) run("redis-cli", ["-u", redisUrl, "DEL", ...keys.slice(i, i + 500)], root)
}

const stack = async (app: string, blocks: ReadonlyArray<Block>) => {
  const prefix = `vf-packed-${crypto.randomUUID().slice(0, 8)}:`
  const vendor = await acme()
  try {
    const sync = start(app, "vendorflow-mock-sync", { PORT: "0", MOCK_SYNC_LATENCY_MS: "5-20" })
    const async = start(app, "vendorflow-mock-async", { PORT: "0", MOCK_ASYNC_DELAY_MS: "100-300" })
    const syncUrl = await waitFor(sync, /listening on (http:\/\/\S+)/)
    const asyncUrl = await waitFor(async, /listening on (http:\/\/\S+)/)
    const shared = {
      REDIS_URL: redisUrl,
      REDIS_PREFIX: prefix,
      VENDORFLOW_ADAPTERS:
        "@vendorflow/adapter-mock-sync,@vendorflow/adapter-mock-async,@vendorflow/example-custom-adapter",
      MOCK_SYNC_URL: syncUrl,
      MOCK_ASYNC_URL: asyncUrl,
      VENDOR_ACME_CREDIT_URL: vendor.url,
      VENDOR_ACME_CREDIT_API_KEY: "acme-packed-key"
    }
    const server = start(app, "vendorflow-server", { ...shared, PORT: "0" })
    const api = await waitFor(server, /Listening on (http:\/\/[^\s"]+)/)
    const worker = start(app, "vendorflow-worker", { ...shared, PUBLIC_URL: api })
    await waitFor(worker, /(vendorflow-worker: consuming)/)
    say(`vendorflow-server at ${api}, a worker, both mock vendors; Redis prefix ${prefix}`)

    for (const payload of [
      { vendor: "sync", company: "Acme" },
      { vendor: "async", company: "Acme" },
      { vendor: "acme-credit", company: "Acme Corp" }
    ]) {
      await completes(api, payload)
      say(`the ${payload.vendor} job completed, its result cleaned`)
    }
    const ui = await fetch(`${api}/ui/`)
    check(ui.status === 200, `GET /ui/: ${ui.status}`)
    check((await ui.text()).includes("<html"), "GET /ui/ is not the dashboard")
    say("/ui/ answers 200 with the dashboard")

    for (const block of blocks.filter((b) => b.mode === "runs")) {
      const code = block.code.replaceAll("http://127.0.0.1:8000", api).replaceAll("http://127.0.0.1:8001", syncUrl)
      writeFileSync(join(app, "docs", block.file), code)
      run(process.execPath, [join("docs", block.file)], app)
      say(`${block.source}'s ${block.file} ran`)
    }

    for (const process_ of [worker, server, async, sync]) {
      const code = await stop(process_)
      check(code === 0, `${process_.name} exited ${code} on SIGTERM:\n${process_.output()}`)
    }

    const standalone = start(app, "vendorflow", { PORT: "0", MOCK_SYNC_PORT: "0", MOCK_ASYNC_PORT: "0" })
    const all = await waitFor(standalone, /at (http:\/\/\S+): API docs/)
    await completes(all, { vendor: "sync", company: "Acme" })
    const code = await stop(standalone)
    check(code === 0, `vendorflow exited ${code} on SIGTERM:\n${standalone.output()}`)
    say("vendorflow (the standalone bin) completed a sync job")
  } catch (error) {
    for (const process_ of running) console.error(`--- ${process_.name}:\n${process_.output()}`)
    throw error
  } finally {
    // Stopped first, so that nothing writes a key after they are deleted.
    await Promise.all(running.map(stop))
    vendor.server.close()
    deleteKeys(prefix)
  }
}

// ---------------------------------------------------------------------------------------------

const tmp = mkdtempSync(join(tmpdir(), "vendorflow-packed-"))
let failed = false
try {
  const tarballs = pack(join(tmp, "tarballs"))
  const app = join(tmp, "app")
  makeApp(app, tarballs)
  const blocks = docBlocks()
  writePrograms(app, blocks)
  typeCheck(app)
  for (const program of ["embedded.ts", "embedded-effect.ts"]) {
    const output = run(process.execPath, [program], app)
    check(/all 3 jobs complete, results cleaned/.test(output), `${program} did not finish its jobs:\n${output}`)
    say(`node ${program}: all 3 jobs complete, results cleaned`)
  }
  const tests = run(process.execPath, ["node_modules/vitest/vitest.mjs", "run"], app)
  const files = /Test Files\s+(\d+) passed/.exec(stripVTControlCharacters(tests))?.[1]
  check(files === "2", `vitest ran ${files ?? "no"} test files, not the example adapter's and the guide's:\n${tests}`)
  say("the example adapter's AdapterSuite passed from its tarball, and the adapter guide's")
  await stack(app, blocks)
  say("passed")
} catch (error) {
  failed = true
  console.error(`test:packed: FAILED: ${error instanceof Failure ? error.message : String(error)}`)
  if (!(error instanceof Failure)) console.error(error)
} finally {
  await Promise.all(running.map(stop))
  if (keep) say(`kept ${tmp}`)
  else rmSync(tmp, { recursive: true, force: true })
}
process.exit(failed ? 1 : 0)
