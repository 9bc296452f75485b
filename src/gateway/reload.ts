/**
 * What `postern serve` re-reads on SIGHUP (and `Gateway.reload`): the users file, the relay rules
 * built on it, and the outbound policy table. Listeners, TLS material and the spool stay as they
 * are. Holders read the current values through `live`, so a reload takes effect on the next
 * command or delivery without restarting anything.
 */
import type { GatewayConfig } from '../config/schema.ts';
import { PolicyTable } from '../policy/table.ts';
import type { PolicyTableSpec } from '../policy/table.ts';
import { relayPolicyFromConfig } from './relay.ts';
import type { RelayPolicy } from './relay.ts';
import { loadUsers } from './users.ts';
import type { UserStore } from './users.ts';

/** The policy table's spec from the config (levels and profile ids). */
export function policySpec(config: GatewayConfig): PolicyTableSpec {
  const entry = (p: GatewayConfig['policy']['default']) => ({ level: p.level, profile: p.profile?.profile ?? null });
  return {
    default: entry(config.policy.default),
    domains: Object.fromEntries([...config.policy.domains].map(([d, p]) => [d, entry(p)])),
  };
}

/** The reloadable part of the gateway, always current. */
export interface LiveConfig {
  readonly users: UserStore | null;
  readonly relay: RelayPolicy;
  readonly policy: PolicyTable;
  /** Re-read users, relay rules and policy from `next`; on error the old values stay. */
  reload(next: GatewayConfig): Promise<void>;
  /** A new users store (e.g. the users file changed): the relay rules are rebuilt on it. */
  setUsers(users: UserStore | null): void;
}

/** Load users, relay rules and policy table for `config`. */
export async function loadLiveConfig(config: GatewayConfig): Promise<LiveConfig> {
  const build = async (c: GatewayConfig) => {
    const users = c.users ? await loadUsers(c.users, { allowMissing: true }) : null;
    return { users, relay: relayPolicyFromConfig(c.relay, users), policy: new PolicyTable(policySpec(c)) };
  };
  let cur = await build(config);
  let relayConfig = config.relay;
  return {
    get users() {
      return cur.users;
    },
    get relay() {
      return cur.relay;
    },
    get policy() {
      return cur.policy;
    },
    async reload(next) {
      // Built completely before it replaces anything: a bad users file leaves the old rules.
      cur = await build(next);
      relayConfig = next.relay;
    },
    setUsers(users) {
      cur = { ...cur, users, relay: relayPolicyFromConfig(relayConfig, users) };
    },
  };
}
