/**
 * Who may send mail where: Postfix's
 *   smtpd_relay_restrictions = permit_sasl_authenticated, permit_mynetworks, reject_unauth_destination
 * plus `reject_sender_login_mismatch` for authenticated senders. Unauthenticated clients from
 * outside `networks` may only reach our own domains, and then only with plain addresses: no '%'
 * or '!' routing, no quoted '@', no address literals (Postfix `allow_untrusted_routing = no`).
 * Decisions are pure functions of the parsed path and the session.
 *
 * Against backscatter: `<Postmaster>` (RFC 5321 §4.5.1) is rewritten to the configured postmaster
 * address instead of being accepted and bounced; recipients of domains listed in `recipients` are
 * checked before the 250 (Postfix relay_recipient_maps, unknown → 550 5.1.1), so a next hop's
 * "user unknown" never becomes a DSN to a forged sender; and `rejectUnauthenticatedLocalSenders`
 * refuses outsiders that use one of our domains as envelope sender.
 */
import { PosternError } from '../core/errors.ts';
import { cidrContains, parseCidr, parseDomain } from '../config/net.ts';
import type { Cidr } from '../config/net.ts';
import type { ListenRole, RelayConfig } from '../config/schema.ts';
import { comparableAddress, comparableDomain } from './address.ts';
import type { ParsedPath } from './address.ts';

/** What the relay rules need to know about the SMTP session. */
export interface RelaySession {
  /** SASL user after a successful AUTH, else null. */
  authUser: string | null;
  /** The client's IP address (IPv4, IPv6 or IPv4-mapped IPv6). */
  clientAddress: string;
  listener: { role: ListenRole };
}

/** Why a path was allowed (for the log line of the decision). */
export type RelayReason =
  | 'authenticated'
  | 'mynetworks'
  | 'local-domain'
  | 'relay-domain'
  | 'postmaster'
  | 'null-sender'
  | 'unrestricted-sender'
  | 'own-address';

export type RelayDecision =
  | {
      ok: true;
      reason: RelayReason;
      /** The recipient to record instead of the one given (`<Postmaster>` → the postmaster address). */
      rewrite?: string;
    }
  | { ok: false; code: number; enhanced: string; message: string };

/** Where the sender addresses of a user come from (UserStore implements this). */
export interface SenderOwnership {
  addresses(name: string): string[];
}

export interface RelayPolicyOptions {
  localDomains: readonly string[];
  relayDomains: readonly string[];
  /** CIDR blocks (Postfix `mynetworks`). */
  networks: readonly string[];
  senderMustMatchLogin: boolean;
  /** Needed when senderMustMatchLogin is true; null means no user owns any address. */
  users: SenderOwnership | null;
  /**
   * Where `RCPT TO:<Postmaster>` goes (RFC 5321 §4.5.1). Default: postmaster@ the first local
   * domain, else the first relay domain, else null (then <Postmaster> gets 550 5.1.1).
   */
  postmaster?: string | null;
  /**
   * Valid recipients per domain (lower-case A-label domain → local parts, compared without case).
   * A domain listed here gets 550 5.1.1 for any other local part; unlisted domains are not checked.
   * `postmaster` is always valid (RFC 5321 §4.5.1).
   */
  recipients?: ReadonlyMap<string, readonly string[]>;
  /** Outsiders (not authenticated, not in networks) may not use our domains as MAIL FROM: 553 5.7.1. */
  rejectUnauthenticatedLocalSenders?: boolean;
}

export interface RelayPolicy {
  /** RCPT TO decision. */
  checkRecipient(path: ParsedPath, session: RelaySession): RelayDecision;
  /** MAIL FROM decision. */
  checkSender(path: ParsedPath, session: RelaySession): RelayDecision;
  /** Is the client in `networks`? */
  isTrustedNetwork(clientAddress: string): boolean;
}

function domainSet(domains: readonly string[], what: string): Set<string> {
  const out = new Set<string>();
  for (const d of domains) {
    const p = parseDomain(d);
    if ('error' in p) throw new PosternError('config-invalid', `${what}: ${p.error}`);
    out.add(p.domain);
  }
  return out;
}

/** `<addr>` as Postfix shows it in replies, with anything unprintable masked so replies stay one clean line. */
function shown(path: ParsedPath): string {
  // Replies are ASCII only (RFC 5321 §4.2; formatReply would mask it too).
  return `<${path.address.replace(/[^\x20-\x7e]/gu, '?')}>`;
}

/** Builds the relay rules. Throws PosternError 'config-invalid' for bad domains or networks. */
export function createRelayPolicy(opts: RelayPolicyOptions): RelayPolicy {
  const local = domainSet(opts.localDomains, 'relay.localDomains');
  const relay = domainSet(opts.relayDomains, 'relay.domains');
  const networks: Cidr[] = opts.networks.map((n) => {
    const c = parseCidr(n);
    if (typeof c === 'string') throw new PosternError('config-invalid', `relay.networks: ${c}`);
    return c;
  });
  const users = opts.users;
  const postmaster = opts.postmaster === undefined ? defaultPostmaster(opts) : opts.postmaster;
  if (postmaster !== null && comparableAddress(postmaster) === null)
    throw new PosternError('config-invalid', `relay.postmaster: '${postmaster}' is not a mail address`);
  const recipients = new Map<string, Set<string>>();
  for (const [d, locals] of opts.recipients ?? []) {
    const domain = comparableDomain(d);
    if (domain === null) throw new PosternError('config-invalid', `relay.recipients: '${d}' is not a domain`);
    recipients.set(domain, new Set(locals.map((l) => l.toLowerCase())));
  }

  const isTrustedNetwork = (address: string): boolean => networks.some((c) => cidrContains(c, address));

  /** permit_sasl_authenticated, permit_mynetworks. */
  const trust = (session: RelaySession): RelayReason | null => {
    if (session.authUser !== null) return 'authenticated';
    if (isTrustedNetwork(session.clientAddress)) return 'mynetworks';
    return null;
  };

  const denied = (path: ParsedPath): RelayDecision => ({
    ok: false,
    code: 554,
    enhanced: '5.7.1',
    message: `${shown(path)}: Relay access denied`,
  });

  /** relay.recipients: is the local part known for a validated domain? (null: domain not validated) */
  const known = (path: ParsedPath): boolean | null => {
    const domain = comparableDomain(path.domain);
    const valid = domain === null ? undefined : recipients.get(domain);
    if (valid === undefined) return null;
    const local = path.local.toLowerCase();
    return local === 'postmaster' || valid.has(local);
  };

  function checkRecipient(path: ParsedPath, session: RelaySession): RelayDecision {
    // RFC 5321 §4.5.1: <Postmaster> (no domain) must be accepted and delivered: it goes to the
    // configured postmaster (accepting it with nowhere to deliver bounced the whole message to a
    // possibly forged sender).
    if (path.address === 'postmaster' && path.domain === '') {
      if (postmaster === null)
        return { ok: false, code: 550, enhanced: '5.1.1', message: '<postmaster>: no postmaster address configured' };
      return { ok: true, reason: 'postmaster', rewrite: postmaster };
    }
    if (path.address === '')
      return { ok: false, code: 501, enhanced: '5.1.3', message: 'Bad recipient address syntax' };
    // Checked for every client: mail for an unknown user is never useful, and refusing it now
    // leaves the client to report it (no DSN from us to a sender we cannot trust).
    if (!path.literal && known(path) === false)
      return {
        ok: false,
        code: 550,
        enhanced: '5.1.1',
        message: `${shown(path)}: Recipient address rejected: User unknown`,
      };
    const trusted = trust(session);
    if (trusted !== null) return { ok: true, reason: trusted };
    // reject_unauth_destination with allow_untrusted_routing = no: the classic relay tricks
    // (user%evil@local, evil!user@local, "user@evil"@local, user@[192.0.2.1]) are refused
    // outright, because a downstream MTA might still honour the embedded route.
    if (path.literal || /[%!@]/.test(path.local)) return denied(path);
    const domain = comparableDomain(path.domain);
    if (domain === null) return denied(path);
    if (local.has(domain)) return { ok: true, reason: 'local-domain' };
    if (relay.has(domain)) return { ok: true, reason: 'relay-domain' };
    return denied(path);
  }

  function checkSender(path: ParsedPath, session: RelaySession): RelayDecision {
    const trusted = trust(session);
    if (session.listener.role === 'submission' && trusted === null) {
      // RFC 4954 §6 / RFC 6409 §4.3: submission is for our users; log in first.
      return { ok: false, code: 530, enhanced: '5.7.0', message: 'Authentication required' };
    }
    // RFC 5321 §4.5.5: the null reverse-path (bounces, RFC 8098 MDNs sent by user agents).
    if (path.address === '') return { ok: true, reason: 'null-sender' };
    if (trusted === null && opts.rejectUnauthenticatedLocalSenders === true) {
      const d = comparableDomain(path.domain);
      if (d !== null && (local.has(d) || relay.has(d)))
        return {
          ok: false,
          code: 553,
          enhanced: '5.7.1',
          message: `${shown(path)}: Sender address rejected: authentication required for our own domains`,
        };
    }
    if (session.authUser === null || !opts.senderMustMatchLogin) return { ok: true, reason: 'unrestricted-sender' };
    const wanted = comparableAddress(path.address);
    const owned = users?.addresses(session.authUser) ?? [];
    const domain = wanted?.slice(wanted.lastIndexOf('@')) ?? null;
    for (const a of owned) {
      // '@example.org' owns the whole domain (Postfix smtpd_sender_login_maps '@domain' keys).
      if (a.startsWith('@')) {
        const d = comparableDomain(a.slice(1));
        if (d !== null && domain === `@${d}`) return { ok: true, reason: 'own-address' };
      } else if (wanted !== null && comparableAddress(a) === wanted) {
        return { ok: true, reason: 'own-address' };
      }
    }
    return {
      ok: false,
      code: 553,
      enhanced: '5.7.1',
      message: `${shown(path)}: Sender address rejected: not owned by user ${session.authUser.replace(/[^\x21-\x7e]/g, '?')}`,
    };
  }

  return { checkRecipient, checkSender, isTrustedNetwork };
}

/** postmaster@ our first domain (local, else relay), or null when we have none. */
function defaultPostmaster(o: { localDomains: readonly string[]; relayDomains: readonly string[] }): string | null {
  const d = o.localDomains[0] ?? o.relayDomains[0];
  return d === undefined ? null : `postmaster@${d}`;
}

/** {@link createRelayPolicy} from the `relay` section of the config. */
export function relayPolicyFromConfig(relay: RelayConfig, users: SenderOwnership | null): RelayPolicy {
  return createRelayPolicy({
    localDomains: relay.localDomains,
    relayDomains: relay.domains,
    networks: relay.networks,
    senderMustMatchLogin: relay.senderMustMatchLogin,
    users,
    ...(relay.postmaster !== undefined ? { postmaster: relay.postmaster } : {}),
    ...(relay.recipients !== undefined ? { recipients: relay.recipients } : {}),
    ...(relay.rejectUnauthenticatedLocalSenders !== undefined
      ? { rejectUnauthenticatedLocalSenders: relay.rejectUnauthenticatedLocalSenders }
      : {}),
  });
}
