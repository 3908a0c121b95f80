/** Builds the dashboard before the browser tests when it is missing or stale. */
import { ensureBuilt } from "../../scripts/build.ts"

export default async (): Promise<void> => {
  await ensureBuilt()
}
