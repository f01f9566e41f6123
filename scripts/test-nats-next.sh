#!/usr/bin/env bash
# `npm run test:nats-next [-- files…]`: the NATS-facing tests on a current nats-server (Debian
# trixie's 2.10+, fetched by fetch-nats-server.sh into data/nats-next/) instead of the one on PATH
# (Debian bookworm's 2.9.10, which `npm test` uses). orderflow must work on both.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/fetch-nats-server.sh
export PATH="$PWD/data/nats-next:$PATH"
echo "test:nats-next: every test below starts $(command -v nats-server) ($(nats-server --version))"
if [ $# -eq 0 ]; then
  # What talks to nats-server most: JetStream, clusters and routes, workers, the server-enforced
  # permissions, the whole system on three nodes. (Every other test starts a server too; run any
  # of them here by naming it.)
  set -- test/nats test/workers test/security test/flow.test.ts test/outbox test/web/live-reconnect.test.ts \
    test/cli/cluster.test.ts test/cli/start-cluster.test.ts
fi
exec npx vitest run "$@"
