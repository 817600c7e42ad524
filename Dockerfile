# syntax=docker/dockerfile:1
# One image for every Keel process: `keel web | worker | migrate`, and the sandbox runtime
# (`node /app/sandbox/dist/runtime.mjs --port 8080`, the Kubernetes driver's SandboxTemplate sets
# that as the container command). Build: docker build -t keel:dev .
#
# Everything that needs the network happens in the build stage (npm ci; Prisma's postinstall may
# download its engines here). At run time nothing is downloaded: the Prisma client is generated
# (WASM query compiler, no engine binary) and `keel migrate` applies migrations itself.

ARG NODE_IMAGE=node:20-slim

# ── build ────────────────────────────────────────────────────────────────────────────────────
FROM ${NODE_IMAGE} AS build
WORKDIR /app
ENV NEXT_TELEMETRY_DISABLED=1 CHECKPOINT_DISABLE=1 PRISMA_HIDE_UPDATE_MESSAGE=1
# Manifests first, so `npm ci` is cached until a dependency changes.
COPY package.json package-lock.json ./
COPY core/package.json core/
COPY worker/package.json worker/
COPY cli/package.json cli/
COPY bench/package.json bench/
COPY server/package.json server/
COPY sandbox/package.json sandbox/
RUN npm ci --no-audit --no-fund
COPY . .
# setup = prisma generate (into core/src/generated) + bundle sandbox/dist/runtime.mjs.
RUN npm run setup && node scripts/build-web.mjs
# tsx and next are runtime dependencies of @keel/cli; typescript, vitest, esbuild, prisma CLI go.
RUN npm prune --omit=dev --no-audit --no-fund \
 && rm -rf server/.next/cache bench e2e controlplane desktop test core/test cli/test server/test

# ── runtime ──────────────────────────────────────────────────────────────────────────────────
FROM ${NODE_IMAGE} AS runtime
# tini as PID 1: forwards SIGTERM (the worker drains on it) and reaps zombies left by commands
# the sandbox runtime runs.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production \
    NEXT_TELEMETRY_DISABLED=1 \
    KEEL_MIGRATIONS_DIR=/app/prisma/migrations \
    KEEL_HOST=0.0.0.0 \
    PORT=3000
COPY --from=build --chown=root:root /app /app
# The sandbox runtime's workspace when the image runs as a sandbox (the pod mounts a volume here).
RUN mkdir -p /workspace && chown 1000:1000 /workspace
# node:20-slim's `node` user (uid 1000); the manifests also set runAsNonRoot.
USER 1000:1000
EXPOSE 3000 8080
ENTRYPOINT ["/usr/bin/tini", "--", "node", "/app/cli/bin/keel.mjs"]
CMD ["web"]
