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

/**
 * For a test that needs a command-line tool but not root (a cross-check against openssl or
 * ldns-dane): skip with the reason when the tool is missing, unless POSTERN_REQUIRE_PEERS=1, in
 * which case the test runs and fails on its first line via {@link assertTool}.
 */
export function toolSkipReason(have: boolean, what: string): string | false {
  if (have || process.env['POSTERN_REQUIRE_PEERS'] === '1') return false;
  return `${what} not installed (scripts/install-peers.sh)`;
}

/** First line of a test guarded by {@link toolSkipReason}: a missing tool is a failure here. */
export function assertTool(have: boolean, what: string): void {
  if (!have) throw new Error(`POSTERN_REQUIRE_PEERS=1 but ${what} is not installed (scripts/install-peers.sh)`);
}
