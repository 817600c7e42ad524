# syntax=docker/dockerfile:1
# Keel's image: every process is `keel web | worker | migrate` (docker build -t keel:dev .).
# The sandbox image is the `sandbox` target below. Base images: node:24-bookworm-slim and debian:bookworm-slim
# from your registry, or built locally with no registry by kind/images/build-bases.sh (same names).
#
# Stages: deps (npm ci) → build (sandbox runtime, Next.js standalone build, then
# scripts/build-image.mjs: the CLI bundled with esbuild + only the node_modules files it and the
# web server use) → runtime (that tree, tini, uid 1000). Nothing is compiled or downloaded at start.

ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS deps
WORKDIR /src
ENV NEXT_TELEMETRY_DISABLED=1 CHECKPOINT_DISABLE=1 PRISMA_HIDE_UPDATE_MESSAGE=1
# Manifests first: `npm ci` is cached until a dependency changes. The desktop app is not part of
# the image; its workspace is left out of the install.
COPY package.json package-lock.json ./
COPY core/package.json core/
COPY worker/package.json worker/
COPY cli/package.json cli/
COPY bench/package.json bench/
COPY server/package.json server/
COPY sandbox/package.json sandbox/
COPY desktop/package.json desktop/
COPY test/package.json test/
COPY e2e/package.json e2e/
COPY controlplane/package.json controlplane/
# Behind a TLS-inspecting proxy npm needs its CA: --build-arg EXTRA_CA_CERTS="$(cat ca.pem)" (kind/up.sh
# passes KEEL_BUILD_CA_FILE). Used by this build only; not in the final images.
ARG EXTRA_CA_CERTS=""
RUN if [ -n "$EXTRA_CA_CERTS" ]; then printf '%s\n' "$EXTRA_CA_CERTS" > /tmp/extra-ca.pem; export NODE_EXTRA_CA_CERTS=/tmp/extra-ca.pem; fi \
 && npm ci --no-audit --no-fund --include-workspace-root \
      -w @keel/core -w @keel/worker -w @keel/cli -w @keel/server -w @keel/sandbox

# ── sandbox image: `docker build --target sandbox -t keel-sandbox:dev .` ─────────────────────────
# What the Kubernetes driver runs in every sandbox pod: the runtime (one bundled file, Node
# built-ins only) and common tools. Its contract, which a team's own image must keep (see
# kind/README.md "Your own sandbox image"): /usr/bin/tini, `node` on PATH (>= 20),
# /app/sandbox/dist/runtime.mjs, uid 1000 can write /workspace.
FROM deps AS sandbox-build
COPY sandbox/ sandbox/
COPY scripts/build-sandbox.mjs scripts/
RUN node scripts/build-sandbox.mjs

FROM ${NODE_IMAGE} AS sandbox
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini git curl ca-certificates python3 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=sandbox-build --chown=root:root /src/sandbox/dist/runtime.mjs /app/sandbox/dist/runtime.mjs
RUN mkdir -p /workspace && chown 1000:1000 /workspace
ENV HOME=/workspace
WORKDIR /workspace
USER 1000:1000
EXPOSE 8080
ENTRYPOINT ["/usr/bin/tini", "--", "node", "/app/sandbox/dist/runtime.mjs", "--port", "8080", "--workspace", "/workspace"]

# ── Keel image (the default target, last) ────────────────────────────────────────────────────
FROM deps AS build
COPY . .
# The sandbox runtime bundle, the dashboard (output: standalone), then the runtime tree in /out.
RUN npm run setup \
 && node server/build.mjs \
 && node scripts/build-image.mjs /out

FROM ${NODE_IMAGE} AS runtime
# tini as PID 1: forwards SIGTERM to node (the worker drains on it, the web turns unready and
# ends its streams) and reaps zombies.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production \
    NEXT_TELEMETRY_DISABLED=1 \
    KEEL_MIGRATIONS_DIR=/app/prisma/migrations \
    KEEL_HOST=0.0.0.0 \
    PORT=3000
# Owned by root, read-only for the process: the code cannot be changed by what runs it.
COPY --from=build --chown=root:root /out /app
# node's `node` user (1000:1000); the manifests also set runAsNonRoot.
USER 1000:1000
EXPOSE 3000
ENTRYPOINT ["/usr/bin/tini", "--", "node", "--enable-source-maps", "/app/cli/dist/keel.mjs"]
CMD ["web"]
