# syntax=docker/dockerfile:1
# sessiongate container image.
#   docker build -t sessiongate:0.1.0 .
#   docker run --rm -p 8080:8080 --read-only --tmpfs /tmp \
#     -v "$PWD/config.yaml:/etc/sessiongate/config.yaml:ro" \
#     -e SG_ADMIN_TOKEN -e SG_CLIENT_SECRET -e SG_SESSION_KEY sessiongate:0.1.0
# Secrets reach the container only as environment variables at run time (the config file refers to
# them as ${SG_...}); nothing secret is ever a build argument or baked into a layer.
# Checked by test/packaging/dockerfile.test.ts.

# ---------------------------------------------------------------- production dependencies only
FROM node:22-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` (tsc) needs the sources and dev dependencies; no runtime dependency
# has an install script of its own.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# ---------------------------------------------------------------- build: dev dependencies + tsc
FROM node:22-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# The `prepare` script: tsc -p tsconfig.build.json -> dist/
RUN npm run prepare

# ---------------------------------------------------------------- runtime
FROM node:22-bookworm-slim AS runtime
# OCI image annotations (docker inspect, registries, scanners). Set the build's own at build time:
#   docker build --build-arg VERSION=0.1.0 --build-arg REVISION="$(git rev-parse HEAD)" \
#     --build-arg CREATED="$(date -u +%Y-%m-%dT%H:%M:%SZ)" -t sessiongate:0.1.0 .
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
ARG SOURCE=unknown
LABEL org.opencontainers.image.title="sessiongate" \
      org.opencontainers.image.description="Session gateway (BFF reverse proxy) that makes stateless session cookies revocable on every device" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="docker.io/library/node:22-bookworm-slim"
ENV NODE_ENV=production \
    SG_CONFIG=/etc/sessiongate/config.yaml
# The gateway never runs npm, yarn or corepack: drop them (smaller image, fewer CVEs).
RUN rm -rf /usr/local/lib/node_modules /usr/local/bin/npm /usr/local/bin/npx \
           /usr/local/bin/corepack /usr/local/bin/yarn /usr/local/bin/yarnpkg /opt/yarn-* \
 && mkdir -p /etc/sessiongate
WORKDIR /app
# Owned by root and read-only for the runtime user: the process cannot modify its own code.
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY config/example.yaml ./config/example.yaml
# The node image's `node` user (uid/gid 1000), numeric so Kubernetes' runAsNonRoot can verify it.
USER 1000:1000
# 8080: public listener; 9090: admin API, /metrics, /healthz, /readyz.
EXPOSE 8080 9090
# Nothing is written outside /tmp, so the container runs with a read-only root filesystem
# (docker run --read-only --tmpfs /tmp; readOnlyRootFilesystem + an emptyDir at /tmp in Kubernetes).
# slim has no curl: node itself probes the admin port (admin.listen must be reachable on 127.0.0.1:9090).
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9090/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["node", "dist/cli.js"]
CMD ["serve"]
