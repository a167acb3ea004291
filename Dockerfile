# pgrotate container image: `docker build -t pgrotate:0.1.0 .`
# The Helm chart (helm/pgrotate) runs it with args only (run-due, worker, ...), as uid 10001,
# on a read-only root filesystem with /tmp as the one writable directory.

# --- build: compile TypeScript, then drop the dev dependencies ---
FROM node:20-bookworm AS build
WORKDIR /app
COPY package.json package-lock.json ./
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY providers ./providers
COPY jobs ./jobs
# npm ci runs the prepare script (the build) too; the explicit build keeps the step obvious.
RUN npm ci --no-audit --no-fund \
 && npm run build \
 && npm prune --omit=dev --no-audit --no-fund \
 && npm cache clean --force

# --- runtime: production dependencies and the compiled JavaScript only ---
FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
RUN groupadd --system --gid 10001 pgrotate \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin pgrotate
COPY --from=build --chown=root:root /app/package.json /app/package-lock.json ./
COPY --from=build --chown=root:root /app/node_modules ./node_modules
COPY --from=build --chown=root:root /app/dist ./dist
USER 10001:10001
# Config: /etc/pgrotate/pgrotate.yaml via PGROTATE_CONFIG (the chart mounts it there).
ENV PGROTATE_CONFIG=/etc/pgrotate/pgrotate.yaml
# The worker's HTTP side (health, metrics, API) when config http.listen uses this port.
EXPOSE 9187
ENTRYPOINT ["node", "/app/dist/src/cli/main.js"]
CMD ["--help"]
