import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll } from "vitest"

/** A fresh database file in a folder of its own, removed when the file's tests end. */
export const scratchFile = (name = "vendorflow.db"): string => {
  const folder = mkdtempSync(join(tmpdir(), "vendorflow-sqlite-"))
  afterAll(() => rmSync(folder, { recursive: true, force: true }))
  return join(folder, name)
}
