import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JOBS_STREAM, ORDERS_STREAM } from '../../src/nats/topology.js';
import { waitFor } from '../helpers/stack.js';
import { BACKENDS } from './backends.js';
import { countOrders, type DriveResult, reportLine, StallMeter, System } from './harness.js';

/**
 * Cluster faults: the whole system (web and every worker as separate processes, on each backend)
 * on a three-node nats-server cluster with R3 streams, under a steady stream of orders, while
 * nodes die. After each scenario the same checks as the single-server suite (faults.test.ts) must
 * pass, and the line adds the longest pipeline stall seen (the longest time no order was shipped
 * while some were waiting, sampled from the database every 100 ms), the slowest order (created →
 * final) and the slowest answer to a POST: printed, never asserted (the machine is shared).
 */
/** The system of the backend whose scenarios are running (one after the other, see BACKENDS). */
let sys: System;
const lines: string[] = [];

afterAll(() => {
  process.stdout.write(`\n${lines.join('\n')}\n`);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const RATE = 25;

/** Resolves once `n` more orders have been accepted: a fault is injected under load, whatever the machine's speed. */
function accepted(n: number): Promise<unknown> {
  const target = sys.sent.size + n;
  return waitFor(() => sys.sent.size >= target, 30_000, `${n} orders accepted`);
}

/**
 * Runs one scenario: load at RATE orders/s while `fault` runs (and a second after), then waits
 * until the system is at rest and checks it. Returns the load's counts and the check.
 */
async function scenario(name: string, fault: () => Promise<Record<string, number | string> | undefined>) {
  const stalls = new StallMeter(sys.db).start();
  let extra: Record<string, number | string> = {};
  const restartsBefore = sys.replicaRestarts;
  const r = await sys.driveWhile(RATE, async () => {
    await accepted(10);
    extra = (await fault()) ?? {};
    // The next scenario starts from a whole cluster: every replica caught up.
    extra.caught_up_ms = await sys.replicasCurrent();
  });
  const atRest = await sys.settle(120_000);
  const { longestStallMs, slowestOrderMs } = await stalls.stop();
  const check = await sys.check();
  lines.push(
    reportLine(name, sys, check, {
      sent: r.sent,
      unanswered: r.failed,
      ...extra,
      slowest_post_ms: r.slowestPostMs ?? 0,
      slowest_order_ms: slowestOrderMs,
      longest_stall_ms: longestStallMs,
      // Nodes restarted because a replica stayed behind (System.replicasCurrent): 0 when NATS recovered by itself.
      replica_restarts: sys.replicaRestarts - restartsBefore,
    }),
  );
  const violations = atRest ? check.violations : ['not at rest within the bound (orders not final, outbox or consumers pending)', ...check.violations];
  expect(violations, violations.length ? sys.outputs() : undefined).toEqual([]);
  expectLoad(r);
  return { r, check };
}

/** Every order was answered and accepted: a node down is no reason for the web app to refuse one. */
function expectLoad(r: DriveResult) {
  expect(r.refused, 'orders answered but not accepted').toBe(0);
  expect(r.failed, 'orders not answered').toBe(0);
  expect(r.accepted, `accepted of ${r.sent} sent`).toBe(r.sent);
}

const node = () => sys.cluster!;

for (const under of BACKENDS)
  describe(`cluster faults on ${under.backend.name} (3 nodes, R3 streams)`, { timeout: 300_000 }, () => {
    beforeAll(async () => {
      await under.before?.();
      sys = new System({ nats: 'cluster', backend: under.backend });
      await sys.start();
    }, 300_000);
    afterAll(async () => {
      // FAULTS_LOG_DIR=dir keeps every process's output, to see the recovery at work.
      const dir = process.env.FAULTS_LOG_DIR;
      if (dir) for (const p of sys?.runs ?? []) writeFileSync(join(dir, `cluster-${under.backend.name}-${p.name}-${p.child.pid}.log`), p.output());
      await sys?.stop();
      await under.after?.();
    }, 60_000);

    /** SIGKILLs the node leading `stream`, waits for the new leader, and brings the node back 3 s later. */
    const killLeader = (stream: string) => async () => {
      const leader = await sys.leaderOf(stream);
      await node().killNode(leader);
      const next = await sys.leaderOf(stream);
      await sleep(3000);
      await node().startNode(leader);
      return { killed: leader, new_leader: next };
    };

    it('a. the node leading the ORDERS stream is killed (SIGKILL) under load, then brought back', async () => {
      await scenario('cluster-kill-orders-leader', killLeader(ORDERS_STREAM));
    });

    it('b. the node leading the JOBS stream is killed (SIGKILL) under load, then brought back', async () => {
      await scenario('cluster-kill-jobs-leader', killLeader(JOBS_STREAM));
    });

    it('c. a rolling restart: each node in turn stops (SIGTERM), starts, and catches up', async () => {
      await scenario('cluster-rolling-restart', async () => {
        for (const n of node().nodes.map((x) => x.name)) {
          await node().stopNode(n);
          await sleep(1000);
          await node().startNode(n);
          await sys.replicasCurrent();
        }
        return { restarted: node().nodes.length };
      });
    });

    it('d. two nodes down at once (no quorum): orders are still taken, the pipeline pauses, then catches up', async () => {
      let postedWhileDown = 0;
      const { r } = await scenario('cluster-no-quorum', async () => {
        const leader = await sys.leaderOf(ORDERS_STREAM);
        const down = [
          leader,
          ...node()
            .nodes.map((x) => x.name)
            .filter((n) => n !== leader),
        ].slice(0, 2);
        const [posted, answered, final] = [sys.posted, sys.sent.size, await finalOrders()];
        await Promise.all(down.map((n) => node().killNode(n)));
        await sleep(4000);
        postedWhileDown = sys.posted - posted;
        const extra = {
          killed: down.join('+'),
          posted_while_down: postedWhileDown,
          answered_while_down: sys.sent.size - answered,
          finished_while_down: (await finalOrders()) - final,
        };
        await Promise.all(down.map((n) => node().startNode(n)));
        return extra;
      });
      // Every order sent while JetStream had no quorum was taken (scenario() checks every order of
      // the run was answered 201): the web app keeps them in its outbox until the cluster is back.
      expect(postedWhileDown).toBeGreaterThan(0);
      expect(r.accepted).toBe(r.sent);
    });
  });

const finalOrders = () => countOrders(sys.db, 'final');
