#!/usr/bin/env bash
# The whole test suite, as the README's `npm test` runs it: installs the Debian peers the
# integration tests talk to (Postfix, Dovecot, testssl.sh, swaks, OpenSSL), then type-checks,
# lints, and runs unit, security, conformance and integration tests with node's test runner.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${POSTERN_SKIP_PEER_INSTALL:-}" != "1" ]; then
  if [ "$(id -u)" = "0" ]; then
    bash scripts/install-peers.sh
  elif command -v sudo >/dev/null 2>&1; then
    sudo bash scripts/install-peers.sh
  else
    echo "test-all: not root and no sudo: cannot install the Debian peers (postfix, dovecot, testssl.sh)." >&2
    echo "hint: run 'bash scripts/install-peers.sh' as root once, then 'POSTERN_SKIP_PEER_INSTALL=1 npm test'." >&2
    exit 2
  fi
fi

# Under npm test a missing peer is a failure, never a silent skip.
export POSTERN_REQUIRE_PEERS=1

echo "== typecheck"; npx tsc --noEmit
echo "== lint"; npm run lint
echo "== tests"
# One runner invocation so node prints one closing summary for everything.
# No --test-force-exit: with it node silently drops verdicts of finished files and still exits 0
# (nodejs/node#64833; measured here: 1083 of 1190 unit tests reported). A file that leaks a handle
# is bounded instead: each test by --test-timeout, the whole run by `timeout`, so a hang fails CI
# loudly rather than hiding results.
timeout --signal=TERM --kill-after=30 4200 node --test --test-concurrency=2 --test-timeout=300000 \
  "test/unit/**/*.test.ts" "test/security/**/*.test.ts" "test/conformance/**/*.test.ts" "test/integration/**/*.test.ts"
