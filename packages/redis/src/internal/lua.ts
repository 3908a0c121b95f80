/**
 * Reads the Lua scripts in `src/lua/` once, when the module loads.
 *
 * The scripts stay `.lua` files, with their KEYS and ARGV documented in their headers, rather
 * than strings inside TypeScript. `tsc` does not copy them into `dist/`, so a built module falls
 * back to the copy under `src/lua/` that the package ships beside `dist/`.
 *
 * @since 0.1.0
 * @internal
 */
import { existsSync, readFileSync } from "node:fs"

/**
 * The source of `src/lua/<name>.lua`.
 *
 * @category internal
 */
export const load = (name: string): string => {
  const besideSource = new URL(`../lua/${name}.lua`, import.meta.url)
  const fromDist = new URL(`../../../src/lua/${name}.lua`, import.meta.url)
  return readFileSync(existsSync(besideSource) ? besideSource : fromDist, "utf8")
}
