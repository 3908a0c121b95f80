# syntax=docker/dockerfile:1
# One image for every vendorflow process: the API (the default command), the worker and the two mock
# vendors; docker-compose.yml picks one by command. Node runs each package's built JavaScript, as an
# installed package runs (`npm run build` in the build stage), with no export condition.
#
#   docker build -t vendorflow:0.1.0 .
#   docker run --rm -p 8000:8000 -e HOST=0.0.0.0 -e VENDORFLOW_ADAPTERS=... vendorflow:0.1.0                # the API
#   docker run --rm -e REDIS_URL=... -e VENDORFLOW_ADAPTERS=... vendorflow:0.1.0 node packages/worker/dist/src/bin.js

# The Node major must match .nvmrc (packages/runtime/test/Compose.test.ts checks it).
ARG NODE_IMAGE=node:24.11-slim

FROM ${NODE_IMAGE} AS base
WORKDIR /app

# Only the manifests, so the dependency layer below is rebuilt when they change and not when a
# source file does.
FROM base AS manifests
COPY . .
RUN mkdir /manifests \
  && find . -name node_modules -prune -o \( -name package.json -o -name package-lock.json \) -type f -print \
    | xargs cp --parents -t /manifests

# Production dependencies as locked. No install scripts: the project admits no package that needs one.
FROM base AS deps
COPY --from=manifests /manifests/ ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
  && npm cache clean --force

# The build: every package's TypeScript into its dist/ (tsc -b, these three reach the others by
# their references), and the dashboard, which Vite (a dev
# dependency) builds into packages/server/assets/ui. The runtime image takes only these from here.
FROM base AS build
COPY --from=manifests /manifests/ ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY . .
RUN node node_modules/typescript/bin/tsc -b packages/standalone packages/worker packages/adapters/http \
  && node packages/ui/scripts/build.ts --force \
  && mkdir /built \
  && find packages -path '*/node_modules' -prune -o -type d -path '*/dist/src' -print | xargs cp -r --parents -t /built \
  && cp -r --parents packages/server/assets/ui /built

FROM base AS runtime
ENV NODE_ENV=production
COPY --from=deps /app/ ./
COPY --from=build /built/ ./
# Files stay root's: the process can read its code but not change it.
USER node
EXPOSE 8000
# The server's young generation is capped at 2 × 16 MiB (Node's default is 2 × 64): up to about
# 90 MiB less RSS under load at no CPU cost a request (docs/operations.md, "Memory").
CMD ["node", "--max-semi-space-size=16", "packages/server/dist/src/bin.js"]
