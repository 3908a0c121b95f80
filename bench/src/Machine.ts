/**
 * The machine a run measured on, and how busy the rest of it was meanwhile: the CPU time that
 * processes outside the bench used (other people's tests on a shared box), read from `/proc`, so
 * a noisy round can be told from a slow one.
 */
import { Process } from "@vendorflow/dev-stack"
import { execFileSync } from "node:child_process"
import { readdirSync, readFileSync } from "node:fs"
import { cpus, loadavg, release, totalmem } from "node:os"

/**
 * What the run ran on.
 */
export interface Machine {
  readonly cpus: number
  readonly cpuModel: string
  readonly memoryGiB: number
  readonly kernel: string
  readonly node: string
  readonly redis: string
  readonly generator: string
  readonly loadAverageAtStart: ReadonlyArray<number>
}

/**
 * Describes this machine; `redisVersion` and `generator` come from the caller.
 */
export const describe = (redisVersion: string, generator: string): Machine => ({
  cpus: cpus().length,
  cpuModel: cpus()[0]?.model.trim() ?? "unknown",
  memoryGiB: Math.round(totalmem() / 2 ** 30),
  kernel: release(),
  node: process.version,
  redis: redisVersion,
  generator,
  loadAverageAtStart: loadavg().map((value) => Math.round(value * 100) / 100)
})

/**
 * The machine as one line.
 */
export const line = (machine: Machine): string =>
  `${machine.cpus} vCPU (${machine.cpuModel}), ${machine.memoryGiB} GiB, Linux ${machine.kernel}, Node ${machine.node}, ` +
  `Redis ${machine.redis}, load generator: ${machine.generator}; everything on loopback`

interface Snapshot {
  readonly at: number
  /** CPU seconds of processes that are neither this bench (and its children) nor redis-server. */
  readonly foreign: number
  readonly steal: number
  /** CPU seconds the whole machine spent working: user, nice, system, irq and softirq. */
  readonly busy: number
  readonly total: number
}

const snapshot = (): Snapshot | undefined => {
  try {
    const procs = new Map<number, { readonly ppid: number; readonly name: string; readonly cpuSeconds: number }>()
    for (const entry of readdirSync("/proc")) {
      if (!/^\d+$/.test(entry)) continue
      const stat = Process.statOf(Number(entry))
      if (stat !== undefined) procs.set(Number(entry), stat)
    }
    // This process and everything below it is ours.
    const ours = new Set<number>([process.pid])
    let grew = true
    while (grew) {
      grew = false
      for (const [pid, stat] of procs) {
        if (!ours.has(pid) && ours.has(stat.ppid)) {
          ours.add(pid)
          grew = true
        }
      }
    }
    let foreign = 0
    for (const [pid, stat] of procs) {
      if (!ours.has(pid) && !stat.name.startsWith("redis-server")) foreign += stat.cpuSeconds
    }
    const cpuLine = readFileSync("/proc/stat", "utf8").split("\n")[0]?.trim().split(/\s+/).slice(1).map(Number) ?? []
    const total = cpuLine.reduce((sum, value) => sum + value, 0) / Process.ticksPerSecond
    const busy = [0, 1, 2, 5, 6].reduce((sum, field) => sum + (cpuLine[field] ?? 0), 0) / Process.ticksPerSecond
    return { at: performance.now(), foreign, steal: (cpuLine[7] ?? 0) / Process.ticksPerSecond, busy, total }
  } catch {
    return undefined
  }
}

/**
 * How busy the rest of the machine was over an interval.
 */
export interface Noise {
  /** CPU cores used on average by processes outside the bench (a lower bound: processes that ended meanwhile are missed). */
  readonly foreignCores: number
  /** Share of CPU time the hypervisor stole. */
  readonly stealPercent: number
  /** CPU seconds the whole machine spent working (every process, and the kernel for them). */
  readonly busySeconds: number
  /** The same as cores busy on average: near the vCPU count, the machine was the limit. */
  readonly busyCores: number
}

/**
 * Starts measuring; call the result to read the noise since.
 */
export const measureNoise = (): (() => Noise | undefined) => {
  const before = snapshot()
  return () => {
    const after = snapshot()
    if (before === undefined || after === undefined) return undefined
    const seconds = (after.at - before.at) / 1000
    const total = after.total - before.total
    return {
      foreignCores: seconds > 0 ? Math.max(0, after.foreign - before.foreign) / seconds : 0,
      stealPercent: total > 0 ? (100 * (after.steal - before.steal)) / total : 0,
      busySeconds: after.busy - before.busy,
      busyCores: seconds > 0 ? (after.busy - before.busy) / seconds : 0
    }
  }
}

/**
 * The version of the Redis at `url`'s server, from `INFO server`.
 */
export const redisVersion = (info: string): string => /redis_version:(\S+)/.exec(info)?.[1] ?? "unknown"

/**
 * The kernel's idea of the load: whether other work was running when the run began.
 */
export const uptimeLine = (): string => {
  try {
    return execFileSync("uptime", { encoding: "utf8" }).trim()
  } catch {
    return `load average ${loadavg().join(", ")}`
  }
}
