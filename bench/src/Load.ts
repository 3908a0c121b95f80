/**
 * The HTTP load generators: `wrk` (a C client on its own threads, so the generator takes as little of
 * the machine as possible) where it is installed, else a closed loop on undici in this process.
 * Both keep `connections` keep-alive connections busy for `seconds`, one request in flight on each,
 * and report throughput, latency percentiles and errors the same way.
 *
 * Three request mixes: the same `POST` over and over; `GET`s cycling through a list of ids; and the
 * original scenario, each client posting a job and then reading it back.
 */
import { execFileSync, spawn } from "node:child_process"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { performance } from "node:perf_hooks"
import { Pool } from "undici"
import * as Stats from "./Stats.ts"

/**
 * What one load run measured.
 */
export interface Result {
  readonly requests: number
  readonly seconds: number
  readonly rps: number
  /** Milliseconds. */
  readonly latency: Stats.Latency
  /** Connect, read, write and timeout errors. */
  readonly socketErrors: number
  /** Answers that were not 2xx or 3xx. */
  readonly statusErrors: number
}

/**
 * What to send.
 */
export type Mix =
  | { readonly _tag: "post"; readonly path: string; readonly body: string }
  | { readonly _tag: "get"; readonly pathPrefix: string; readonly ids: ReadonlyArray<string> }
  | { readonly _tag: "scenario"; readonly postPath: string; readonly getPrefix: string; readonly body: string }

/**
 * A load run.
 */
export interface Run {
  readonly baseUrl: string
  readonly mix: Mix
  readonly connections: number
  readonly seconds: number
}

/**
 * A load generator.
 */
export interface Generator {
  /** What it is, for the report, e.g. `wrk 4.1.0 (2 threads)`. */
  readonly name: string
  readonly run: (run: Run) => Promise<Result>
}

// ---------------------------------------------------------------------------------------------
// wrk
// ---------------------------------------------------------------------------------------------

/**
 * The installed wrk's version line, or undefined when there is none.
 */
export const wrkVersion = (): string | undefined => {
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
    'WRKJSON {"requests":%d,"micros":%d,"p50":%d,"p90":%d,"p95":%d,"p99":%d,"max":%d,"mean":%f,' ..
    '"connect":%d,"read":%d,"write":%d,"timeout":%d,"status":%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(95), latency:percentile(99), latency.max, latency.mean,
    e.connect, e.read, e.write, e.timeout, e.status))
end
`

const luaFor = (mix: Mix, dir: string): string => {
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
    case "scenario":
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

interface WrkJson {
  readonly requests: number
  readonly micros: number
  readonly p50: number
  readonly p90: number
  readonly p95: number
  readonly p99: number
  readonly max: number
  readonly mean: number
  readonly connect: number
  readonly read: number
  readonly write: number
  readonly timeout: number
  readonly status: number
}

/**
 * wrk with `threads` threads; the caller checked that it is installed.
 */
export const wrk = (version: string, threads: number): Generator => ({
  name: `${version} (${threads} threads)`,
  run: (run) =>
    new Promise<Result>((resolve, reject) => {
      const dir = mkdtempSync(join(tmpdir(), "vendorflow-bench-wrk-"))
      const script = join(dir, "script.lua")
      writeFileSync(script, luaFor(run.mix, dir))
      const args = [
        `-t${Math.min(threads, run.connections)}`,
        `-c${run.connections}`,
        `-d${run.seconds}s`,
        "--timeout",
        "10s",
        "-s",
        script,
        run.baseUrl
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
            p50: parsed.p50 / 1000,
            p90: parsed.p90 / 1000,
            p95: parsed.p95 / 1000,
            p99: parsed.p99 / 1000,
            max: parsed.max / 1000,
            mean: parsed.mean / 1000
          },
          socketErrors: parsed.connect + parsed.read + parsed.write + parsed.timeout,
          statusErrors: parsed.status
        })
      })
    })
})

// ---------------------------------------------------------------------------------------------
// undici (fallback)
// ---------------------------------------------------------------------------------------------

interface Request {
  readonly method: "GET" | "POST"
  readonly path: string
  readonly body?: string | undefined
}

const postHeaders = { "content-type": "application/json" }

/**
 * A closed loop on undici in this process: `connections` loops, each sending its next request when
 * the last one is answered. It shares the CPU with what it measures, so it reads lower than wrk.
 */
export const undici = (why: string): Generator => ({
  name: `undici closed loop in the bench process (${why})`,
  run: async (run) => {
    const pool = new Pool(run.baseUrl, { connections: run.connections, pipelining: 1 })
    const latencies = new Stats.Samples()
    let socketErrors = 0
    let statusErrors = 0
    let index = 0
    const started = performance.now()
    const deadline = started + run.seconds * 1000

    const send = async (request: Request): Promise<{ readonly status: number; readonly text: string } | undefined> => {
      const begin = performance.now()
      try {
        const answer = await pool.request({
          method: request.method,
          path: request.path,
          ...(request.body === undefined ? {} : { body: request.body, headers: postHeaders })
        })
        const text = await answer.body.text()
        latencies.add(performance.now() - begin)
        if (answer.statusCode >= 400) statusErrors++
        return { status: answer.statusCode, text }
      } catch {
        socketErrors++
        return undefined
      }
    }

    const client = async () => {
      while (performance.now() < deadline) {
        const mix = run.mix
        switch (mix._tag) {
          case "post":
            await send({ method: "POST", path: mix.path, body: mix.body })
            break
          case "get":
            await send({ method: "GET", path: `${mix.pathPrefix}${mix.ids[index++ % mix.ids.length]}` })
            break
          case "scenario": {
            const posted = await send({ method: "POST", path: mix.postPath, body: mix.body })
            const id = posted?.status === 200 ? /^\{"request_id":"([^"]+)"\}$/.exec(posted.text)?.[1] : undefined
            if (id !== undefined && performance.now() < deadline) {
              await send({ method: "GET", path: `${mix.getPrefix}${id}` })
            }
            break
          }
        }
      }
    }

    await Promise.all(Array.from({ length: run.connections }, client))
    const seconds = (performance.now() - started) / 1000
    await pool.close()
    return {
      requests: latencies.count,
      seconds,
      rps: latencies.count / seconds,
      latency: latencies.latency(),
      socketErrors,
      statusErrors
    }
  }
})

/**
 * wrk where it is installed (unless `force` says `undici`), else the undici loop.
 */
export const pick = (options: { readonly force?: "wrk" | "undici" | undefined; readonly threads: number }) => {
  const version = options.force === "undici" ? undefined : wrkVersion()
  if (version !== undefined) return wrk(version, options.threads)
  if (options.force === "wrk") throw new Error("--generator=wrk: wrk is not installed (apt-get install -y wrk)")
  return undici(options.force === "undici" ? "--generator=undici" : "wrk is not installed")
}
