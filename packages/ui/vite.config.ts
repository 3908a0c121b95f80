/**
 * Builds the dashboard into `@vendorflow/server`'s `assets/ui`, which the server serves at `/ui/`.
 * Everything is bundled (no CDN): the page works offline.
 */
import { fileURLToPath } from "node:url"
import { defineConfig } from "vite"

export const outDir = fileURLToPath(new URL("../server/assets/ui/", import.meta.url))

export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  base: "/ui/",
  logLevel: "warn",
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: { outDir, emptyOutDir: true, target: "es2022", sourcemap: true, reportCompressedSize: false }
})
