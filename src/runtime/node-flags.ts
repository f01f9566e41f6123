/**
 * V8 flags every orderflow process runs with (bin/orderflow.mjs's shebang and the Dockerfile's
 * ENTRYPOINT carry the same; `orderflow start` passes them to its children): a young generation
 * of at most 2 MB per semi-space instead of V8's 16. Under 1,500-2,000 orders/s the default let each
 * worker grow to ~175 MB of RSS; with it they stay near 140 MB, for more (cheap) scavenges.
 */
export const NODE_FLAGS = ['--max-semi-space-size=2'];
