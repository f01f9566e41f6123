/**
 * V8 flags orderflow's long-running processes run with: `orderflow start` passes them to its
 * children, the tests and the bench to the processes they spawn, and docker-compose.yml sets the
 * same per service through NODE_OPTIONS.
 * A smaller young generation than V8's 16 MB semi-spaces: under 1,500-2,000 orders/s the default
 * let each worker grow to 150-175 MB of RSS; with 2 MB they peak near 140 MB for a few more
 * scavenges, cheap where messages are handled in milliseconds. The web app allocates the most
 * per order (HTTP, JSON, NATS requests and publishes) and holds requests in flight across a
 * request/reply and a commit, so its young objects live longer: with 8 MB the garbage collector
 * took 23% of its busy time at 600 orders/s (`npm run bench:profile -- web --rate=600`), with
 * 32 MB 6%; it gets 32 MB, for some 50 MB more RSS under load.
 */
export function nodeFlags(args: readonly string[]): string[] {
  if (args[0] === 'worker') return ['--max-semi-space-size=2'];
  if (args[0] === 'web') return ['--max-semi-space-size=32'];
  return [];
}
