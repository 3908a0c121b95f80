import { configDefaults, defineConfig } from "vitest/config"

const project = (name: string, root: string, exclude: ReadonlyArray<string> = []) => ({
  extends: true as const,
  test: { name, root, include: ["test/**/*.test.ts"], exclude: [...configDefaults.exclude, ...exclude] }
})

export default defineConfig({
  resolve: { conditions: ["@vendorflow/source"] },
  ssr: { resolve: { conditions: ["@vendorflow/source"] } },
  test: {
    testTimeout: 30_000,
    hookTimeout: 30_000,
    projects: [
      project("core", "packages/core"),
      project("redis", "packages/redis"),
      project("sqlite", "packages/sqlite"),
      project("mongo", "packages/mongo"),
      project("adapter-kit", "packages/adapters/kit"),
      project("adapter-mock-sync", "packages/adapters/mock-sync"),
      project("adapter-mock-async", "packages/adapters/mock-async"),
      project("adapter-http", "packages/adapters/http"),
      project("runtime", "packages/runtime"),
      project("server", "packages/server"),
      project("standalone", "packages/standalone"),
      // The fault suite is its own project: `npm test` leaves it out, `npm run test:faults` runs it.
      project("worker", "packages/worker", ["test/faults/**"]),
      {
        extends: true as const,
        test: {
          name: "faults",
          root: "packages/worker",
          include: ["test/faults/**/*.test.ts"],
          // Each scenario starts its own processes and waits on deadlines and backoffs, so the
          // files run two at a time (`npm run test:faults` caps the workers at 2).
          testTimeout: 120_000,
          hookTimeout: 60_000
        }
      },
      {
        extends: true as const,
        test: {
          name: "ui",
          root: "packages/ui",
          include: ["test/**/*.test.ts"],
          // Builds the dashboard first when it is missing or older than its sources.
          globalSetup: ["test/support/globalSetup.ts"],
          // One stack and one Chromium for the file; each test waits on conditions with deadlines.
          testTimeout: 60_000,
          hookTimeout: 60_000
        }
      },
      project("example-embedded", "examples/embedded"),
      project("example-custom-adapter", "examples/custom-adapter"),
      project("load", "load")
    ]
  }
})
