/**
 * wrk as a `Load.Generator`: a C client on threads of its own, so the generator takes as little of
 * the machine as possible, driven by a Lua script per `Load.Mix` that reports its figures as JSON.
 * {@link pick} takes it where it is installed, else the Node generator.
 *
 * @since 0.0.0
 */
import { execFileSync, spawn } from "node:child_process"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Load from "./Load.ts"

/**
 * The installed wrk's version line, or undefined when there is none.
 *
 * @category generators
 */
export const version = (): string | undefined => {
  try {
    // wrk prints its version with -v and exits 1.
    return execFileSync("wrk", ["-v"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] })
  } catch (error) {
    const output = (error as { stdout?: unknown }).stdout
    if (typeof output === "string" && output.startsWith("wrk")) return output.split("\n")[0]?.split(" [")[0]
    return undefined
  }
}

const luaString = (text: string): string => JSON.stringify(text)

// Printed by every script's done(): the figures as JSON on one line.
const doneLua = `
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"micros":%d,"p50":%d,"p90":%d,"p95":%d,"p99":%d,"min":%d,"max":%d,"mean":%f,' ..
    '"connect":%d,"read":%d,"write":%d,"timeout":%d,"status":%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(95), latency:percentile(99), latency.min, latency.max, latency.mean,
    e.connect, e.read, e.write, e.timeout, e.status))
end
`

const luaFor = (mix: Load.Mix, dir: string): string => {
  switch (mix._tag) {
    case "post":
      // A static request: wrk builds it once, the cheapest way to send it.
      return `wrk.method = "POST"
wrk.path = ${luaString(mix.path)}
wrk.body = ${luaString(mix.body)}
wrk.headers["Content-Type"] = "application/json"
${doneLua}`
    case "get": {
      const file = join(dir, "ids.txt")
      writeFileSync(file, mix.ids.join("\n") + "\n")
      return `local ids = {}
local i = 0
init = function(args)
  for line in io.lines(${luaString(file)}) do ids[#ids + 1] = line end
  i = math.random(#ids)
end
request = function()
  i = i % #ids + 1
  return wrk.format("GET", ${luaString(mix.pathPrefix)} .. ids[i])
end
${doneLua}`
    }
    case "scenario": {
      if (typeof mix.body !== "string") throw new Error("wrk: a scenario posts one fixed body")
      // Each POST's answer queues a GET of its job, which the next free connection sends: every
      // client posts a job and then reads one back, as in the original scenario.
      return `local pending = {}
local first, last = 1, 0
local post = nil
init = function(args)
  post = wrk.format("POST", ${luaString(mix.postPath)}, { ["Content-Type"] = "application/json" }, ${luaString(mix.body)})
end
request = function()
  if first <= last then
    local id = pending[first]
    pending[first] = nil
    first = first + 1
    return wrk.format("GET", ${luaString(mix.getPrefix)} .. id)
  end
  return post
end
response = function(status, headers, body)
  if status == 200 then
    local id = string.match(body, '^{"request_id":"([^"]+)"}$')
    if id then
      last = last + 1
      pending[last] = id
    end
  end
end
${doneLua}`
    }
  }
}

interface WrkJson {
  readonly requests: number
  readonly micros: number
  readonly p50: number
  readonly p90: number
  readonly p95: number
  readonly p99: number
  readonly min: number
  readonly max: number
  readonly mean: number
  readonly connect: number
  readonly read: number
  readonly write: number
  readonly timeout: number
  readonly status: number
}

/**
 * wrk with `threads` threads; the caller checked that it is installed (see {@link version}).
 *
 * @category generators
 */
export const generator = (installed: string, threads: number): Load.Generator => ({
  name: `${installed} (${threads} threads)`,
  run: (load) =>
    new Promise<Load.Measurement>((resolve, reject) => {
      const dir = mkdtempSync(join(tmpdir(), "vendorflow-bench-wrk-"))
      const script = join(dir, "script.lua")
      writeFileSync(script, luaFor(load.mix, dir))
      const args = [
        `-t${Math.min(threads, load.connections)}`,
        `-c${load.connections}`,
        `-d${load.seconds}s`,
        "--timeout",
        "10s",
        "-s",
        script,
        load.baseUrl
      ]
      const child = spawn("wrk", args, { stdio: ["ignore", "pipe", "pipe"] })
      let output = ""
      child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()))
      child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()))
      child.once("error", reject)
      child.once("exit", (code) => {
        const line = /WRKJSON (\{.*\})/.exec(output)?.[1]
        if (code !== 0 || line === undefined)
          return reject(new Error(`wrk ${args.join(" ")} failed (${code}):\n${output}`))
        const parsed = JSON.parse(line) as WrkJson
        const seconds = parsed.micros / 1e6
        resolve({
          requests: parsed.requests,
          seconds,
          rps: parsed.requests / seconds,
          latency: {
            count: parsed.requests,
            avg: parsed.mean / 1000,
            min: parsed.min / 1000,
            med: parsed.p50 / 1000,
            max: parsed.max / 1000,
            p90: parsed.p90 / 1000,
            p95: parsed.p95 / 1000,
            p99: parsed.p99 / 1000
          },
          socketErrors: parsed.connect + parsed.read + parsed.write + parsed.timeout,
          statusErrors: parsed.status
        })
      })
    })
})

/**
 * wrk where it is installed (unless `force` says `undici`), else the Node generator in this process.
 *
 * @category generators
 */
export const pick = (options: {
  readonly force?: "wrk" | "undici" | undefined
  readonly threads: number
}): Load.Generator => {
  const installed = options.force === "undici" ? undefined : version()
  if (installed !== undefined) return generator(installed, options.threads)
  if (options.force === "wrk") throw new Error("--generator=wrk: wrk is not installed (apt-get install -y wrk)")
  return Load.inProcess(options.force === "undici" ? "--generator=undici" : "wrk is not installed")
}
