// Read by the Prisma CLI (generate, and migrate on machines that have its schema engine).
// The app itself never reads this file: src/config/env.ts owns DATABASE_URL and its default.
import { defineConfig } from 'prisma/config';

export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  datasource: { url: process.env.DATABASE_URL ?? 'file:./data/orderflow.db' },
});
