# One image for the web app and every worker: the command picks the process (see docker-compose.yml).
FROM node:20-bookworm-slim
WORKDIR /app
# better-sqlite3 builds from source when no prebuilt binary matches.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json prisma.config.ts ./
COPY prisma ./prisma
RUN npm ci --no-audit --no-fund
COPY . .
ENV NODE_ENV=production HOST=0.0.0.0 DATA_DIR=/app/data DATABASE_URL=file:/app/data/orderflow.db
ENTRYPOINT ["node", "bin/orderflow.mjs"]
CMD ["--help"]
