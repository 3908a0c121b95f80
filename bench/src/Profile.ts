/**
 * Reads a V8 CPU profile (`node --cpu-prof`'s `.cpuprofile`) into what the report shows: where the
 * process spent its samples, by function (self time) and by package, so a hot path can be read
 * without opening DevTools.
 */
import { readFileSync } from "node:fs"

interface CallFrame {
  readonly functionName: string
  readonly url: string
  readonly lineNumber: number
}

interface ProfileNode {
  readonly id: number
  readonly callFrame: CallFrame
  readonly hitCount?: number
  readonly children?: ReadonlyArray<number>
}

interface CpuProfile {
  readonly nodes: ReadonlyArray<ProfileNode>
  readonly startTime: number
  readonly endTime: number
  readonly samples?: ReadonlyArray<number>
  readonly timeDeltas?: ReadonlyArray<number>
}

/**
 * One line of a profile summary: a function or a package and its share of the samples.
 */
export interface Entry {
  readonly name: string
  readonly percent: number
}

/**
 * What a profile shows.
 */
export interface Summary {
  readonly file: string
  readonly seconds: number
  /** Share of samples in which the process was idle (waiting for I/O). */
  readonly idlePercent: number
  /** Share of samples in garbage collection. */
  readonly gcPercent: number
  /** Functions by self time, busiest first. */
  readonly functions: ReadonlyArray<Entry>
  /** Packages (or `node:` internals, or our workspaces) by self time, busiest first. */
  readonly packages: ReadonlyArray<Entry>
  /** Functions by total time (self and everything they called), busiest first. */
  readonly inclusive: ReadonlyArray<Entry>
  /** Source files by self time, busiest first: e.g. Effect's fiber runtime apart from its Schema parser. */
  readonly files: ReadonlyArray<Entry>
}

const packageOf = (url: string): string => {
  if (url === "") return "(native / V8)"
  if (url.startsWith("node:")) return "node: internals"
  const modules = url.lastIndexOf("/node_modules/")
  if (modules >= 0) {
    const rest = url.slice(modules + "/node_modules/".length).split("/")
    return rest[0]?.startsWith("@") === true ? `${rest[0]}/${rest[1] ?? ""}` : (rest[0] ?? url)
  }
  const workspace = /\/(packages\/(?:adapters\/)?[^/]+|bench|load)\//.exec(url)
  return workspace?.[1] ?? url
}

const shortUrl = (url: string): string => {
  const modules = url.lastIndexOf("/node_modules/")
  if (modules >= 0) return url.slice(modules + "/node_modules/".length)
  const repo = /\/(packages|bench|load)\//.exec(url)
  return repo === null ? url.replace(/^file:\/\//, "") : url.slice(repo.index + 1)
}

const top = (counts: Map<string, number>, total: number, limit: number): ReadonlyArray<Entry> =>
  [...counts.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit)
    .map(([name, count]) => ({ name, percent: (100 * count) / total }))

/**
 * Summarises the profile in `file`: the `limit` busiest functions and packages by self time.
 */
export const summarize = (file: string, limit = 15): Summary => {
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile
  const byId = new Map(profile.nodes.map((node) => [node.id, node]))
  // Self samples per node: from `samples` when present (exact), else `hitCount`.
  const hits = new Map<number, number>()
  if (profile.samples !== undefined) {
    for (const id of profile.samples) hits.set(id, (hits.get(id) ?? 0) + 1)
  } else {
    for (const node of profile.nodes) hits.set(node.id, node.hitCount ?? 0)
  }
  const functions = new Map<string, number>()
  const packages = new Map<string, number>()
  const files = new Map<string, number>()
  let total = 0
  let idle = 0
  let gc = 0
  for (const [id, count] of hits) {
    const node = byId.get(id)
    if (node === undefined) continue
    total += count
    const { functionName, url, lineNumber } = node.callFrame
    if (functionName === "(idle)") {
      idle += count
      continue
    }
    if (functionName === "(garbage collector)") gc += count
    const name =
      url === "" ? functionName || "(anonymous)" : `${functionName || "(anonymous)"} ${shortUrl(url)}:${lineNumber + 1}`
    functions.set(name, (functions.get(name) ?? 0) + count)
    const owner = functionName === "(garbage collector)" ? "(garbage collector)" : packageOf(url)
    packages.set(owner, (packages.get(owner) ?? 0) + count)
    const file = url === "" ? name : shortUrl(url)
    files.set(file, (files.get(file) ?? 0) + count)
  }
  const busy = Math.max(1, total - idle)
  // Total time: each sample counts once for every distinct function on its stack.
  const parents = new Map<number, number>()
  for (const node of profile.nodes) for (const child of node.children ?? []) parents.set(child, node.id)
  const nameOf = (node: ProfileNode) => {
    const { functionName, url, lineNumber } = node.callFrame
    return url === ""
      ? functionName || "(anonymous)"
      : `${functionName || "(anonymous)"} ${shortUrl(url)}:${lineNumber + 1}`
  }
  const inclusive = new Map<string, number>()
  for (const [id, count] of hits) {
    const leaf = byId.get(id)
    if (leaf === undefined || leaf.callFrame.functionName === "(idle)") continue
    const seen = new Set<string>()
    for (let at: number | undefined = id; at !== undefined; at = parents.get(at)) {
      const node = byId.get(at)
      if (node === undefined) break
      const name = nameOf(node)
      if (name === "(root)" || seen.has(name)) continue
      seen.add(name)
      inclusive.set(name, (inclusive.get(name) ?? 0) + count)
    }
  }
  return {
    file,
    seconds: (profile.endTime - profile.startTime) / 1e6,
    idlePercent: (100 * idle) / Math.max(1, total),
    gcPercent: (100 * gc) / busy,
    // Shares of the busy (non-idle) samples, which is what a hot path is made of.
    functions: top(functions, busy, limit),
    packages: top(packages, busy, limit),
    inclusive: top(inclusive, busy, limit),
    files: top(files, busy, limit)
  }
}

/**
 * The summary as Markdown lines.
 */
export const toMarkdown = (summary: Summary, title: string): string => {
  const lines = [
    `#### ${title}`,
    "",
    `${summary.seconds.toFixed(0)} s profiled, ${summary.idlePercent.toFixed(0)}% idle; shares below are of the busy samples (GC ${summary.gcPercent.toFixed(1)}%).`,
    "",
    "| package | self |",
    "|---|---:|",
    ...summary.packages.slice(0, 8).map((entry) => `| ${entry.name} | ${entry.percent.toFixed(1)}% |`),
    "",
    "| file | self |",
    "|---|---:|",
    ...summary.files.slice(0, 10).map((entry) => `| \`${entry.name}\` | ${entry.percent.toFixed(1)}% |`),
    "",
    "| function | self |",
    "|---|---:|",
    ...summary.functions.slice(0, 12).map((entry) => `| \`${entry.name}\` | ${entry.percent.toFixed(1)}% |`),
    ""
  ]
  return lines.join("\n")
}
