# One image for the web app and every worker: the command picks the process (see docker-compose.yml).
# Node 22, the maintained LTS line (Node 20 reached end of life in April 2026; orderflow still runs
# on 20.19+, see README "What you need").

# Build: every dependency (the Prisma CLI generates the storage layer's Kysely types at install; they
# are types only, so the run stage needs neither them nor Prisma), then drop the dev ones.
FROM node:22-bookworm-slim AS build
WORKDIR /app
# better-sqlite3 compiles from source when no prebuilt binary matches.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json prisma.config.ts ./
COPY prisma ./prisma
RUN npm ci --no-audit --no-fund && npm prune --omit=dev --no-audit --no-fund

# Run: production dependencies, the sources (tsx runs them; there is no build step), a non-root user.
FROM node:22-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production HOST=0.0.0.0 DATA_DIR=/app/data DATABASE_URL=file:/app/data/orderflow.db
COPY --from=build /app/node_modules ./node_modules
COPY package.json prisma.config.ts ./
COPY bin ./bin
COPY prisma ./prisma
COPY src ./src
COPY views ./views
COPY public ./public
# The image's own user (uid 1000, from the node image) owns only the data folder.
RUN mkdir -p /app/data && chown node:node /app/data
USER node
ENTRYPOINT ["node", "bin/orderflow.mjs"]
CMD ["--help"]
