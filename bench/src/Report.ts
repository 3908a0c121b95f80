/**
 * The report: one table of every figure with its spread, its baseline from the same run, the
 * ratio, the target and whether it was met; the memory table; both as Markdown, which reads in a
 * terminal and pastes into `docs/benchmarks.md` as it is.
 */
import { Stats } from "@vendorflow/dev-stack"
import type * as Bench from "./Bench.ts"
import type * as Cluster from "./Cluster.ts"
import type * as EndToEnd from "./EndToEnd.ts"
import type * as Ingest from "./Ingest.ts"
import type * as RateLimit from "./RateLimit.ts"
import type * as Soak from "./Soak.ts"
import type * as Sqlite from "./Sqlite.ts"

/**
 * Everything a run measured.
 */
export interface Results {
  readonly ingest?: Ingest.Result | undefined
  readonly endToEnd?: EndToEnd.Result | undefined
  readonly cluster?: Cluster.Result | undefined
  readonly scenario?: { readonly measured: Bench.Measured; readonly connections: number } | undefined
  readonly rateLimit?: RateLimit.Result | undefined
  readonly sqlite?: Sqlite.Result | undefined
  readonly soak?: Soak.Result | undefined
}

/**
 * One line of the table.
 */
export interface Row {
  readonly scenario: string
  readonly vendorflow: string
  readonly baseline: string
  readonly ratio: string
  readonly target: string
  /** `true`/`false`, or undefined for an informational line. */
  readonly met: boolean | undefined
}

const int = (value: number): string => Math.round(value).toLocaleString("en-US")
const ms = (value: number): string => (value >= 100 ? value.toFixed(0) : value.toFixed(1))
const spread = (summary: Stats.Summary): string => `±${((100 * summary.spread) / 2).toFixed(0)}%`
// Of figures not measured in turns (the undici ceiling runs on its own).
const ratioOf = (a: number, b: number): string => `${(a / b).toFixed(2)}×`

// A figure's ratio between two stacks that took turns, round by round: the median of the rounds'
// ratios, and each round's. A round's two runs are one to three runs apart, so the VM's drift over
// the run moves this less than a ratio of the two medians, and an odd round shows. The median gets
// three significant digits, so that fewer of those just under a target (0.698) read as meeting it.
// Rounds that do not line up (which the loops that fill them never leave) give no ratio, rather than
// losing the run's results.
const paired = (ours: Stats.Summary, peer: Stats.Summary) => {
  if (ours.rounds.length !== peer.rounds.length) {
    return { median: Number.NaN, text: "n/a", rounds: `${ours.rounds.length} rounds against ${peer.rounds.length}` }
  }
  const each = ours.rounds.map((value, i) => value / peer.rounds[i]!)
  const median = Stats.median(each)
  const rounds = `rounds ${each.map((value) => value.toPrecision(2)).join(", ")}`
  return { median, text: `${median.toPrecision(3)}×`, rounds }
}
const withRounds = (ratio: ReturnType<typeof paired>): string => `${ratio.text} (${ratio.rounds})`

const cpuPerRequest = (measured: Bench.Measured): string =>
  `${int((1e6 * measured.cpuCores.median) / measured.rps.median)} µs CPU/req`

const throughput = (measured: Bench.Measured): string =>
  `${int(measured.rps.median)} req/s ${spread(measured.rps)}, p99 ${ms(measured.p99.median)} ms, ${cpuPerRequest(measured)}`

const loadRow = (
  scenario: string,
  pair: { readonly vendorflow: Bench.Measured; readonly floor: Bench.Measured },
  floorName: string,
  targeted: boolean
): Row => {
  const rps = paired(pair.vendorflow.rps, pair.floor.rps)
  const p99 = paired(pair.vendorflow.p99, pair.floor.p99)
  const errors = pair.vendorflow.errors + pair.floor.errors
  return {
    scenario,
    vendorflow: throughput(pair.vendorflow),
    baseline: `${floorName}: ${throughput(pair.floor)}`,
    ratio: `throughput ${withRounds(rps)}, p99 ${withRounds(p99)}${errors > 0 ? `, ${errors} errors` : ""}`,
    target: targeted ? "≥ 0.70× and p99 ≤ 3×" : "(context)",
    met: targeted ? rps.median >= 0.7 && p99.median <= 3 : undefined
  }
}

const endToEndFigures = (measured: EndToEnd.Measured): string =>
  `${int(measured.jobsPerSecond.median)} jobs/s ${spread(measured.jobsPerSecond)}, ${int(measured.machineMicrosPerJob.median)} µs machine CPU/job (${measured.machineCores.toFixed(1)} cores busy)`

// Two rows for a pair of end-to-end peers: jobs/s (at least `target` times the peer's, no job
// failed) and the whole machine's CPU per job (at most the peer's).
const peerRows = (scenario: string, ours: EndToEnd.Measured, peer: EndToEnd.Measured, target: number): Array<Row> => {
  const ratio = paired(ours.jobsPerSecond, peer.jobsPerSecond)
  const cpu = paired(ours.machineMicrosPerJob, peer.machineMicrosPerJob)
  const failed = ours.failed + peer.failed
  return [
    {
      scenario,
      vendorflow: endToEndFigures(ours),
      baseline: `${peer.name}: ${endToEndFigures(peer)}`,
      ratio: `${withRounds(ratio)}${failed > 0 ? `, ${failed} failed` : ""}`,
      target: `≥ ${target.toFixed(2)}×`,
      met: ratio.median >= target && ours.failed === 0
    },
    {
      scenario: `${scenario.replace(/ \(.*\)$/, "")}: the whole machine's CPU per job`,
      vendorflow: `${int(ours.machineMicrosPerJob.median)} µs`,
      baseline: `${peer.name}: ${int(peer.machineMicrosPerJob.median)} µs`,
      ratio: `${cpu.text} ${peer.name}'s (${cpu.rounds})`,
      target: "≤ 1.00×",
      met: cpu.median <= 1
    }
  ]
}

/**
 * The rows of the main table.
 */
export const rows = (results: Results): Array<Row> => {
  const out: Array<Row> = []
  const { cluster, endToEnd, ingest, rateLimit, scenario, soak, sqlite } = results
  if (ingest !== undefined) {
    if (ingest.post !== undefined) out.push(loadRow("POST /jobs (Redis)", ingest.post, "Fastify + HSET + XADD", true))
    if (ingest.get !== undefined) out.push(loadRow("GET /jobs/{id} (Redis)", ingest.get, "Fastify + HGET", true))
    const variant = ingest.variant
    if (variant?.post !== undefined && ingest.post !== undefined) {
      out.push(
        loadRow(
          `POST /jobs (Redis) [${variant.name}]`,
          { vendorflow: variant.post, floor: ingest.post.floor },
          "Fastify + HSET + XADD",
          true
        )
      )
    }
    if (variant?.get !== undefined && ingest.get !== undefined) {
      out.push(
        loadRow(
          `GET /jobs/{id} (Redis) [${variant.name}]`,
          { vendorflow: variant.get, floor: ingest.get.floor },
          "Fastify + HGET",
          true
        )
      )
    }
    const rss = ingest.postRssMiB
    if (rss !== undefined) {
      out.push({
        scenario: "RSS of the one-process server after the POST rounds",
        vendorflow: `${rss.vendorflow.toFixed(0)} MiB${rss.variant === undefined ? "" : ` (${variant?.name}: ${rss.variant.toFixed(0)} MiB, its processes together)`}`,
        baseline: `Fastify + HSET + XADD: ${rss.floor.toFixed(0)} MiB`,
        ratio: `${(rss.vendorflow / rss.floor).toFixed(2)}×`,
        target: "≤ 1.20×",
        met: rss.vendorflow <= 1.2 * rss.floor
      })
    }
    if (ingest.postNoIo !== undefined) {
      out.push(loadRow("POST /jobs, no I/O (memory backends)", ingest.postNoIo, "Fastify alone", false))
    }
  }
  if (endToEnd !== undefined) {
    const { bullmq, fastifyBullmq, library, undiciCeiling, vendorflow } = endToEnd
    const setting = `${int(endToEnd.jobs)} jobs, ${endToEnd.workers} worker processes of ${endToEnd.bullmqConcurrency} jobs at once, mock at 0 ms`
    out.push(
      ...peerRows(`end to end over HTTP (${setting})`, vendorflow, fastifyBullmq, 1.25),
      ...peerRows(
        "end to end in-process (our library's submit against BullMQ's Queue.add, same workers)",
        library,
        bullmq,
        1
      )
    )
    out.push({
      scenario: "end to end: ours over HTTP vs BullMQ's in-process add (the former comparison)",
      vendorflow: endToEndFigures(vendorflow),
      baseline: `${bullmq.name}: ${endToEndFigures(bullmq)}`,
      ratio: withRounds(paired(vendorflow.jobsPerSecond, bullmq.jobsPerSecond)),
      target: "(context)",
      met: undefined
    })
    // What each job cost the whole machine next to the call alone and, for any stack with an HTTP
    // ingest, a POST to the floor.
    const floorPost = ingest?.post?.floor.machineMicrosPerRequest
    out.push({
      scenario: "end to end vs the plain HTTP client ceiling",
      vendorflow: `${int(vendorflow.jobsPerSecond.median)} jobs/s over HTTP, ${int(library.jobsPerSecond.median)} in-process`,
      baseline:
        `undici, ${undiciCeiling.inFlight} in flight: ${int(undiciCeiling.rps.median)} req/s ${spread(undiciCeiling.rps)}, ` +
        `${int(undiciCeiling.machineMicrosPerCall)} µs machine CPU a call` +
        (floorPost === undefined ? "" : `; a POST to the Fastify floor: ${int(floorPost)} µs`),
      ratio: `${ratioOf(vendorflow.jobsPerSecond.median, undiciCeiling.rps.median)} / ${ratioOf(library.jobsPerSecond.median, undiciCeiling.rps.median)}`,
      target: "(context)",
      met: undefined
    })
  }
  if (cluster !== undefined) {
    const failed = cluster.cluster.failed + cluster.single.failed
    out.push({
      scenario: `end to end on a local Redis Cluster (3 primaries + 3 replicas), ${int(cluster.jobs)} jobs, ${cluster.workers} worker process(es)`,
      vendorflow: `${int(cluster.cluster.jobsPerSecond.median)} jobs/s ${spread(cluster.cluster.jobsPerSecond)} (${cluster.cluster.cpuSecondsPer1000.toFixed(2)} CPU s / 1k jobs)`,
      baseline: `one Redis: ${int(cluster.single.jobsPerSecond.median)} jobs/s ${spread(cluster.single.jobsPerSecond)} (${cluster.single.cpuSecondsPer1000.toFixed(2)} CPU s / 1k jobs)`,
      ratio: `${withRounds(paired(cluster.cluster.jobsPerSecond, cluster.single.jobsPerSecond))}${failed > 0 ? `, ${failed} failed` : ""}`,
      target: "(context)",
      met: undefined
    })
  }
  if (scenario !== undefined) {
    const measured = scenario.measured
    out.push({
      scenario: `original scenario: ${scenario.connections} clients, POST then GET`,
      vendorflow: `${int(measured.rps.median)} req/s ${spread(measured.rps)}, p50 ${ms(measured.p50.median)} / p95 ${ms(measured.p95.median)} / p99 ${ms(measured.p99.median)} ms, ${measured.errors} errors`,
      baseline: "—",
      ratio: "—",
      target: "0 errors, p95 ≤ 50 ms",
      met: measured.errors === 0 && measured.p95.median <= 50
    })
  }
  if (rateLimit !== undefined) {
    const { advertised, hidden, inFlight, known } = rateLimit
    const pct = (ratio: number) => `${(100 * ratio).toFixed(1)}%`
    out.push({
      scenario: `rate limit L = ${known.limit}/s known, ${known.workers} worker processes (after a warm-up of L jobs)`,
      vendorflow: `${known.achievedPerSecond.toFixed(1)}/s achieved, busiest 1 s window ${known.worstWindow} (at ${known.worstWindowAt.toFixed(1)} s), ${known.refused} × 429`,
      baseline: `L = ${known.limit}/s`,
      ratio: `${pct(known.achievedRatio)} of L`,
      target: "≥ 98% of L, no 1 s window > L, no 429",
      met: known.achievedRatio >= 0.98 && known.worstWindow <= known.limit && known.refused === 0
    })
    out.push({
      scenario: `rate limit L = ${hidden.limit}/s hidden (429s only), auto; ${hidden.loweredTo}/s from ${hidden.dropAfterSeconds} s`,
      vendorflow:
        `90% of L after ${hidden.reached90Seconds ?? "—"} s; 10 s–${hidden.dropAfterSeconds} s: ${pct(hidden.steadyRatio)} of L, ` +
        `${pct(hidden.steadyRefusedShare)} 429s; under ${hidden.loweredTo}/s ${hidden.settledSeconds ?? "—"} s after the drop`,
      baseline: `L = ${hidden.limit}/s`,
      ratio: `${pct(hidden.steadyRatio)} of L`,
      target: "≥ 90% of L within 10 s, then < 2% 429s; under the new L within 5 s",
      met:
        (hidden.reached90Seconds ?? Infinity) <= 10 &&
        hidden.steadyRatio >= 0.9 &&
        hidden.steadyRefusedShare < 0.02 &&
        (hidden.settledSeconds ?? Infinity) <= 5
    })
    out.push({
      scenario: `rate limit L = ${advertised.limit}/s advertised in headers, auto (after a warm-up of L jobs, the learned limit then dropped from Redis)`,
      vendorflow: `${advertised.achievedPerSecond.toFixed(1)}/s achieved, busiest 1 s window ${advertised.worstWindow}, ${advertised.refused} × 429`,
      baseline: `L = ${advertised.limit}/s`,
      ratio: `${pct(advertised.achievedRatio)} of L`,
      target: "≥ 98% of L, no 429",
      met: advertised.achievedRatio >= 0.98 && advertised.refused === 0
    })
    out.push({
      scenario: `${inFlight.cap} in flight at most, ${known.workers} workers × ${inFlight.concurrency} concurrency`,
      vendorflow: `${inFlight.refused} calls past the cap, ${inFlight.completedPerSecond.toFixed(1)} calls/s`,
      baseline: `cap ${inFlight.cap}`,
      ratio: "—",
      target: "never more than the cap at the vendor",
      met: inFlight.refused === 0
    })
  }
  if (sqlite !== undefined) {
    out.push(loadRow("POST /jobs (SQLite file)", sqlite.post, "Fastify + HSET + XADD", false))
    const { jobs, memory, sqlite: file } = sqlite.endToEnd
    out.push({
      scenario: `all-in-one end to end, ${int(jobs)} jobs, mock at 0 ms`,
      vendorflow: `SQLite file: ${int(file.median)} jobs/s ${spread(file)}`,
      baseline: `memory: ${int(memory.median)} jobs/s ${spread(memory)}`,
      ratio: withRounds(paired(file, memory)),
      target: "(context)",
      met: undefined
    })
  }
  if (soak !== undefined) {
    const worst = soak.series.reduce((a, b) => (b.growth > a.growth ? b : a))
    out.push({
      scenario: `soak: ${soak.minutes} min at ${soak.ratePerSecond} jobs/s (POST + GET each)`,
      vendorflow: soak.series
        .map((series) => `${series.process} ${series.afterOneMinuteMiB.toFixed(0)} → ${series.atEndMiB.toFixed(0)} MiB`)
        .join(", "),
      baseline: "RSS after 1 min",
      ratio: `worst ${worst.growth >= 0 ? "+" : ""}${(100 * worst.growth).toFixed(1)}% (${worst.process}), ${soak.errors} errors`,
      target: "≤ +10%",
      met: soak.series.every((series) => series.growth <= 0.1)
    })
    // Redis from the first minute after the jobs' TTL (when expiry keeps pace) to the end.
    const { samples, allowed } = soak.redis
    const settled = samples.find((sample) => sample.minute >= 3) ?? samples[0]
    const last = samples.at(-1)
    if (settled !== undefined && last !== undefined) {
      const memoryGrowth = last.usedMiB / settled.usedMiB - 1
      out.push({
        scenario: "soak: Redis (jobs expire after 2 min, the stream is trimmed past 10,000 entries)",
        vendorflow: `from ${settled.minute} to ${last.minute} min: job hashes ${settled.jobs} → ${last.jobs}, stream ${settled.stream} → ${last.stream}, used memory ${settled.usedMiB.toFixed(0)} → ${last.usedMiB.toFixed(0)} MiB`,
        baseline: `retention allows about ${allowed.jobs} job hashes and ${allowed.stream} stream entries`,
        ratio: `memory ${memoryGrowth >= 0 ? "+" : ""}${(100 * memoryGrowth).toFixed(1)}%`,
        target: "no growth beyond retention",
        // 10% over the allowance: jobs in flight, and the stream is trimmed a macro node at a time.
        met: last.jobs <= allowed.jobs * 1.1 && last.stream <= allowed.stream * 1.1 && memoryGrowth <= 0.1
      })
    }
  }
  return out
}

/**
 * The main table as Markdown.
 */
export const table = (results: Results): string => {
  const lines = [
    "| scenario | vendorflow | baseline (same run) | ratio | target | met |",
    "|---|---|---|---|---|---|",
    ...rows(results).map(
      (row) =>
        `| ${row.scenario} | ${row.vendorflow} | ${row.baseline} | ${row.ratio} | ${row.target} | ${
          row.met === undefined ? "" : row.met ? "yes" : "**no**"
        } |`
    )
  ]
  return lines.join("\n")
}

/**
 * The memory readings as Markdown: one column per moment, one row per process.
 */
export const memoryTable = (readings: ReadonlyArray<Bench.MemoryReading>): string => {
  const moments = [...new Set(readings.map((reading) => reading.when))]
  const processes = [...new Set(readings.map((reading) => reading.process))]
  const cell = (process: string, when: string) => {
    const reading = readings.find((entry) => entry.process === process && entry.when === when)
    return reading === undefined ? "" : reading.rssMiB.toFixed(0)
  }
  return [
    `| RSS (MiB) | ${moments.join(" | ")} |`,
    `|---|${moments.map(() => "---:").join("|")}|`,
    ...processes.map((process) => `| ${process} | ${moments.map((when) => cell(process, when)).join(" | ")} |`)
  ].join("\n")
}
