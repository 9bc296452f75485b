/**
 * Skip or fail tests that need real peers. Locally (not root, peers missing) they skip with the
 * reason; under `npm test` (POSTERN_REQUIRE_PEERS=1, set by scripts/test-all.sh) a missing peer is
 * a failure, so CI can never go green by skipping.
 */
const isRoot = process.getuid?.() === 0;

export function peerSkipReason(have: boolean, what: string): string | false {
  if (isRoot && have) return false;
  const why = isRoot ? `${what} not installed (scripts/install-peers.sh)` : 'needs root';
  if (process.env['POSTERN_REQUIRE_PEERS'] === '1') throw new Error(`POSTERN_REQUIRE_PEERS=1 but ${why}`);
  return why;
}
