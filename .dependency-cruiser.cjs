// The dependency rule (ARCHITECTURE.md "Layout"), checked by `npm run lint` (part of `npm test`).
// Arrows point one way: contracts ← domain rules ← use cases and ports ← adapters ← composition roots.
const DOMAIN_RULES = '^src/(orders/(money|state|reference|order|errors)|payments/policy)[.]ts$';
const DRIVERS = '^node_modules/(better-sqlite3|pg|kysely|nats|fastify|@fastify)/';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    { name: 'no-circular', comment: 'a cycle hides which side depends on which', severity: 'error', from: {}, to: { circular: true } },
    {
      name: 'contracts-import-nothing-of-ours',
      comment: 'src/events is the wire contract: every process and tool imports it, it imports none of them',
      severity: 'error',
      from: { path: '^src/events/' },
      to: { path: '^src/', pathNot: '^src/events/' },
    },
    {
      name: 'domain-rules-import-only-contracts',
      comment: 'money, the state machine, the reference and the order type are pure rules',
      severity: 'error',
      from: { path: DOMAIN_RULES },
      to: { path: '^src/', pathNot: [DOMAIN_RULES, '^src/events/'] },
    },
    {
      name: 'domain-rules-use-no-drivers',
      severity: 'error',
      from: { path: DOMAIN_RULES },
      to: { dependencyTypes: ['npm', 'npm-dev'] , pathNot: '^node_modules/zod/' },
    },
    {
      name: 'use-cases-know-only-ports',
      comment: 'the flows (src/orders) speak to storage and NATS through src/orders/ports.ts, never to an adapter or a driver',
      severity: 'error',
      from: { path: '^src/orders/' },
      to: { path: ['^src/(storage|nats|jobs|web|workers|cli|runtime|observability|config)/', '^src/outbox/relay', DRIVERS] },
    },
    {
      name: 'storage-adapters-only-in-composition-roots',
      comment: 'which database is in use is decided where a process is put together (src/runtime, src/cli), nowhere else',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/(storage|runtime|cli)/' },
      to: { path: '^src/storage/' },
    },
    {
      name: 'sql-drivers-only-in-storage',
      comment: 'all SQL lives in src/storage',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/storage/' },
      to: { path: '^node_modules/(better-sqlite3|pg|kysely)/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^src/storage/generated/' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
  },
};
