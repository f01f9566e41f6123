/**
 * V8 flags orderflow's long-running processes run with: `orderflow start` passes them to its
 * children, the tests and the bench to the processes they spawn, and docker-compose.yml sets the
 * same per service through NODE_OPTIONS.
 * A smaller young generation than V8's 16 MB semi-spaces: under 1,500-2,000 orders/s the default
 * let each worker grow to 150-175 MB of RSS; with 2 MB they peak near 140 MB for a few more
 * scavenges, cheap where messages are handled in milliseconds. The web app holds 50 requests in
 * flight under load, so its young objects live longer: there a small young generation promotes
 * them early and costs throughput; it gets 8 MB.
 */
export function nodeFlags(args: readonly string[]): string[] {
  if (args[0] === 'worker') return ['--max-semi-space-size=2'];
  if (args[0] === 'web') return ['--max-semi-space-size=8'];
  return [];
}
