# syntax=docker/dockerfile:1
# One image for every vendorflow process: the API (the default command), the worker and the two mock
# vendors; docker-compose.yml picks one by command. Node runs the TypeScript sources as they are
# (type stripping, no build step) with the `@vendorflow/source` export condition, as the repo does.
#
#   docker build -t vendorflow:0.1.0 .
#   docker run --rm -p 8000:8000 -e HOST=0.0.0.0 vendorflow:0.1.0                       # the API
#   docker run --rm -e REDIS_URL=... vendorflow:0.1.0 node packages/worker/src/bin.ts   # a worker

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

# The dashboard: Vite (a dev dependency) builds it into packages/server/assets/ui, which is all the
# runtime image takes from this stage.
FROM base AS ui
COPY --from=manifests /manifests/ ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY . .
RUN node packages/ui/scripts/build.ts --force

FROM base AS runtime
ENV NODE_ENV=production \
    NODE_OPTIONS=--conditions=@vendorflow/source
COPY --from=deps /app/ ./
COPY . .
COPY --from=ui /app/packages/server/assets/ui/ ./packages/server/assets/ui/
# Files stay root's: the process can read its code but not change it.
USER node
EXPOSE 8000
CMD ["node", "packages/server/src/bin.ts"]
