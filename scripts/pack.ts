/**
 * A public package's `prepack` and `postpack` (npm runs them in the package's folder, for `npm pack`
 * and `npm publish` alike).
 *
 * Before packing: builds the package to JS and declarations (`tsc -b`, its references first), then
 * removes what an earlier build left in `dist/src` for a source that is gone, and writes the manifest
 * that ships: the repository's, without the `@vendorflow/source` export
 * condition (which leads the repository's own processes to `src/*.ts`; Node refuses to strip types
 * under `node_modules`), without `scripts` and `devDependencies`. It refuses to pack when an
 * `exports` target or a `bin` is not built JS (or its declarations). The repository's manifest waits
 * in `package.source.json` until, after packing (`--restore`), it is put back.
 *
 * Usage: `scripts/node.sh <repo>/scripts/pack.ts` before, `… pack.ts --restore` after.
 */
import { execFileSync } from "node:child_process"
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs"
import { join, relative } from "node:path"
import { fileURLToPath } from "node:url"

const sourceCondition = "@vendorflow/source"
const manifest = "package.json"
const kept = "package.source.json"

type Exports = string | null | { readonly [key: string]: Exports }

const withoutSource = (exports: Exports): Exports =>
  exports === null || typeof exports === "string"
    ? exports
    : Object.fromEntries(
        Object.entries(exports)
          .filter(([key]) => key !== sourceCondition)
          .map(([key, value]) => [key, withoutSource(value)])
      )

const targets = (exports: Exports): Array<string> =>
  exports === null ? [] : typeof exports === "string" ? [exports] : Object.values(exports).flatMap(targets)

// The built files whose source (`src/<same path>.ts`) no longer exists.
const orphans = (dir: string): Array<string> =>
  readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return orphans(path)
    const source = join("src", relative(join("dist", "src"), path)).replace(/(\.d)?\.(js|ts)(\.map)?$/, "")
    return existsSync(`${source}.ts`) || existsSync(`${source}.tsx`) ? [] : [path]
  })

const fail = (message: string): never => {
  console.error(`pack: ${message}`)
  process.exit(1)
}

if (process.argv.includes("--restore")) {
  if (existsSync(kept)) renameSync(kept, manifest)
} else {
  // A pack cut short leaves the repository's manifest in `kept`: start from it, never from a published one.
  if (!existsSync(kept)) renameSync(manifest, kept)
  const source = JSON.parse(readFileSync(kept, "utf8")) as Record<string, unknown> & {
    readonly name: string
    readonly exports?: Exports
    readonly bin?: Readonly<Record<string, string>>
  }
  const tsc = fileURLToPath(new URL("../node_modules/typescript/bin/tsc", import.meta.url))
  try {
    execFileSync(process.execPath, [tsc, "-b", "."], { stdio: "inherit" })
  } catch {
    renameSync(kept, manifest)
    fail(`${source.name}: tsc -b failed`)
  }
  if (existsSync(join("dist", "src"))) for (const path of orphans(join("dist", "src"))) rmSync(path)
  const { scripts: _scripts, devDependencies: _devDependencies, ...shipped } = source
  const exports = source.exports === undefined ? undefined : withoutSource(source.exports)
  const published = exports === undefined ? shipped : { ...shipped, exports }
  const entries = [...targets(exports ?? null), ...Object.values(source.bin ?? {})]
  const wrong = entries.filter((path) => !/\.(d\.ts|js)$/.test(path) || !existsSync(join(".", path)))
  if (wrong.length > 0) {
    renameSync(kept, manifest)
    fail(`${source.name}: these entries are not built JS or declarations: ${wrong.join(", ")}`)
  }
  writeFileSync(manifest, `${JSON.stringify(published, null, 2)}\n`)
}
