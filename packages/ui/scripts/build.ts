/**
 * Builds the dashboard with Vite into `packages/server/assets/ui` when it is missing or older than
 * any of its sources (`--force`: always). `npm start`, `npm run build:ui` and the browser tests'
 * global setup run it, so a fresh clone needs no separate build step.
 */
import { readdirSync, statSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { build } from "vite"

const root = fileURLToPath(new URL("..", import.meta.url))
const configFile = join(root, "vite.config.ts")
const builtIndex = fileURLToPath(new URL("../../server/assets/ui/index.html", import.meta.url))

const newest = (path: string): number => {
  const info = statSync(path)
  if (!info.isDirectory()) return info.mtimeMs
  return Math.max(info.mtimeMs, ...readdirSync(path).map((name) => newest(join(path, name))))
}

const builtAt = (): number | undefined => {
  try {
    return statSync(builtIndex).mtimeMs
  } catch {
    return undefined
  }
}

/** Whether the built files are missing or older than a source. */
export const isStale = (): boolean => {
  const built = builtAt()
  const sources = ["src", "index.html", "vite.config.ts", "package.json"].map((name) => newest(join(root, name)))
  return built === undefined || Math.max(...sources) > built
}

/** Builds when stale (or always with `force`); resolves to whether it built. */
export const ensureBuilt = async (options: { readonly force?: boolean } = {}): Promise<boolean> => {
  if (options.force !== true && !isStale()) return false
  const started = Date.now()
  await build({ configFile, logLevel: "warn" })
  console.log(`dashboard built into ${builtIndex.replace(/index\.html$/, "")} in ${Date.now() - started} ms`)
  return true
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await ensureBuilt({ force: process.argv.includes("--force") })
}
