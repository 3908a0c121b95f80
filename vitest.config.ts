import { defineConfig } from "vitest/config"

const project = (name: string, root: string) => ({
  extends: true as const,
  test: { name, root, include: ["test/**/*.test.ts"] }
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
      project("mongo", "packages/mongo"),
      project("adapter-kit", "packages/adapters/kit"),
      project("adapter-mock-sync", "packages/adapters/mock-sync"),
      project("adapter-mock-async", "packages/adapters/mock-async"),
      project("adapter-http", "packages/adapters/http"),
      project("runtime", "packages/runtime"),
      project("server", "packages/server"),
      project("worker", "packages/worker"),
      project("example-embedded", "examples/embedded"),
      project("example-custom-adapter", "examples/custom-adapter"),
      project("load", "load")
    ]
  }
})
