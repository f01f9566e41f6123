/**
 * npm run bench:pipeline -- [sqlite|postgresql] [rates, default 100,300,600] [step seconds, default 10] [--intake]
 * A quicker look than `npm run bench`: orderflow's pipeline on one backend and one nats-server,
 * step by step, without the ceilings, the second web process or the cluster. For comparing a
 * change with the code before it on the same machine, back to back; its figures are not the
 * ones quoted (those come from `npm run bench`). The first step also warms the processes up.
 * Prints one line per step: finished/s, POST and e2e latency, CPU ms per order by process.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { defaultAuthDir, ensureNatsAuth } from '../src/nats/auth/identities.js';
import { TEST_PERMISSIONS } from '../src/nats/auth/permissions.js';
import { startNatsServer } from '../src/nats/server-process.js';
import { startPostgres } from '../test/helpers/postgres.js';
import { postmasterPid, treeCpuMs } from './lib.js';
import { orderflowPart, sqliteUrl } from './orderflow.js';

const positional = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const [backend, rates, stepS] = z
  .tuple([
    z.enum(['sqlite', 'postgresql']).default('sqlite'),
    z
      .string()
      .default('100,300,600')
      .transform((s) => s.split(',').map(Number))
      .pipe(z.array(z.number().int().positive().max(20_000)).min(1)),
    z.coerce.number().min(1).max(300).default(10),
  ])
  .parse([positional[0], positional[1], positional[2]]);
const ROOT = resolve(import.meta.dirname, '..');
const dir = join(ROOT, 'bench', 'tmp', `pipeline-${Date.now()}`);
mkdirSync(dir, { recursive: true });
const auth = ensureNatsAuth(defaultAuthDir({ DATA_DIR: dir }), { extra: [{ kind: 'bench', permissions: TEST_PERMISSIONS }] });
process.env.BENCH_NATS_SEED = join(auth.identitiesDir, 'bench.nk');
const nats = await startNatsServer({ storeDir: join(dir, 'nats'), configFile: auth.serverConfig, watchParent: true });
const postgres = backend === 'postgresql' ? await startPostgres() : null;
try {
  const databaseUrl = postgres ? await postgres.createDatabase('orderflow') : sqliteUrl(dir);
  const pgPid = postgres ? await postmasterPid(postgres.url()) : 0;
  const result = await orderflowPart({
    dir,
    natsUrl: nats.url,
    databaseUrl,
    // No ceiling measured here: the intake's ratio to it is left out (printed as against 1 req/s).
    ceiling: { ok_per_s: 1 } as never,
    otherCpu: () => ({ 'nats-server': treeCpuMs(nats.pid), ...(postgres ? { postgres: treeCpuMs(pgPid) } : {}) }),
    otherRss: () => ({}),
    rates,
    stepSeconds: () => stepS,
    flatOutS: 5,
    drainLimitMs: 60_000,
    maxLagMs: 1000,
    stopWhenNotSustained: false,
    intake: process.argv.includes('--intake'),
  });
  if ('skipped' in result) throw new Error(result.skipped);
  for (const s of result.pipeline) {
    process.stdout.write(
      `${backend} ${s.offered_per_s}/s offered: finished ${s.finished_per_s}/s${s.sustained ? '' : ' (NOT sustained)'}; ` +
        `POST p50 ${s.http.p50_ms} p99 ${s.http.p99_ms} ms (last third p50 ${s.http.last_third.p50_ms} p99 ${s.http.last_third.p99_ms}); ` +
        `e2e p50 ${s.e2e_events_ms?.whole.p50_ms ?? '-'} p99 ${s.e2e_events_ms?.whole.p99_ms ?? '-'} ms; ` +
        `CPU ${s.cpu_ms_per_order} ms/order ${JSON.stringify(s.cpu_ms_per_order_by_process)}\n`,
    );
  }
} finally {
  await nats.stop();
  await postgres?.close();
  rmSync(dir, { recursive: true, force: true });
}
