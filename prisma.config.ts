// Read by the Prisma CLI (generate, and migrate on machines that have its schema engine).
// The app itself never reads this file: src/config/env.ts owns DATABASE_URL and its default.
// A postgres:// or postgresql:// DATABASE_URL selects the PostgreSQL schema and its migrations
// (prisma/postgresql), so `prisma migrate deploy` / `migrate status` work on either database.
// `npm run generate` names prisma/schema.prisma itself: the client is generated from it alone.
import { defineConfig } from 'prisma/config';

const url = process.env.DATABASE_URL ?? 'file:./data/orderflow.db';
const postgres = /^postgres(ql)?:\/\//i.test(url);

export default defineConfig({
  schema: postgres ? 'prisma/postgresql/schema.prisma' : 'prisma/schema.prisma',
  migrations: { path: postgres ? 'prisma/postgresql/migrations' : 'prisma/migrations' },
  datasource: { url },
});
