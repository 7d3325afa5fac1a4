# Troupe: one image for both `troupe worker …` and `troupe operator`.
#
#   docker build -t troupe:0.1.0 .
#   docker run --rm troupe:0.1.0 --help
#   docker run --rm troupe:0.1.0 demo
#   docker run --rm -e TROUPE_BROKER_URL=redis://redis:6379 -v $PWD/actors:/app/actors troupe:0.1.0 worker /app/actors/tasks.js
#
# Build your own worker image FROM this one: see docs/shipping.md.

ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json .npmrc ./
# --ignore-scripts: `prepare` runs tsc, and the sources are not copied yet.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
# the build's step that puts the Lua scripts into dist/ beside the modules that load them
COPY scripts/copy-lua.mjs ./scripts/
COPY worker ./worker
COPY operator ./operator
# the actors `troupe demo` runs
COPY examples ./examples
RUN npm run build \
 && mkdir -p /out \
 && cp -r dist package.json /out/ \
 && find /out/dist -name '*.d.ts' -delete \
 # the dashboard's script and stylesheet are read at run time from beside the sources, so they keep their paths
 && cp -r --parents worker/console/static /out/

FROM ${NODE_IMAGE}
# tini is PID 1: it forwards SIGTERM to node (which would ignore it as PID 1) and reaps zombies.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# MALLOC_ARENA_MAX: one glibc malloc arena per process instead of up to 8 per core; worker threads allocate
# their objects in V8, and the extra arenas only kept ~1 MB per thread that was never given back (see supervisor.ts).
ENV NODE_ENV=production \
    HOME=/tmp \
    npm_config_cache=/tmp/.npm \
    MALLOC_ARENA_MAX=1
COPY package.json package-lock.json .npmrc ./
# The package depends on itself ("troupe": "file:"), so node_modules/troupe links back to /app and actor modules
# anywhere under /app (e.g. /app/actors) can `import "troupe"`.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force \
 && ln -s /app/dist/worker/cli/main.js /usr/local/bin/troupe
COPY --from=build /out /app
COPY crds ./crds

# Numeric, so that Kubernetes can verify runAsNonRoot; 1000 is the base image's `node` user.
USER 1000:1000
# worker /metrics (TROUPE_METRICS_PORT); operator /metrics, /healthz, /readyz (--metrics-port)
EXPOSE 9191 8080
ENTRYPOINT ["/usr/bin/tini", "--", "node", "/app/dist/worker/cli/main.js"]
CMD ["--help"]
