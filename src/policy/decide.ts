/**
 * The outbound TLS policy decision: given the level (and optional profile) that applies to a
 * next-hop domain and what one connection to one MX actually produced, may the message go?
 * Pure: no I/O, no clock (validity comes from the ChainReport, computed at the caller's `now`).
 *
 * The crypto check is tls/evaluate — the same function `scan` grades with — applied to the facts
 * of the negotiated session, so a report and a delivery decision cannot disagree.
 *
 * Temporary vs permanent is decided here once: every policy failure is temporary (Postfix defers
 * with 4.7.4/4.7.5); the queue turns it into a bounce when the message's lifetime ends.
 */
import { evaluate, factsFromSession, compareSeverity } from '../tls/evaluate.ts';
import type { CertFacts, RuleFinding } from '../tls/evaluate.ts';
import type { ChainReport } from '../tls/cert/chain.ts';
import type { CertInfo } from '../tls/cert/analyze.ts';
import { matchHostname } from '../tls/cert/hostname.ts';
import type { Profile } from '../tls/profiles/types.ts';
import type { NegotiatedSession } from '../tls/session.ts';
import type { TlsaRecord } from '../dns/dnssec.ts';
import { formatTlsa, verifyDane } from './dane/verify.ts';
import { attemptsTls, requiresAuth, requiresTls } from './levels.ts';
import type { TlsLevel } from './levels.ts';

export interface DecideInput {
  level: TlsLevel;
  /** Enforced at encrypt and above. */
  profile: Profile | null;
  /** The TLS session, when a handshake completed. */
  session: NegotiatedSession | null;
  /** STARTTLS was advertised in the EHLO reply. */
  tlsOffered: boolean;
  /** Why there is no session although TLS was attempted (STARTTLS refused, handshake failed), in words. */
  tlsError: string | null;
  /** 'refused': the server answered STARTTLS with an error, the connection is still usable in cleartext.
   * 'handshake' (default): the handshake failed, the connection is gone. */
  tlsFailure?: 'refused' | 'handshake';
  /** Analysis of session.peerChain (trust at the caller's now); null when none could be made. */
  chain: ChainReport | null;
  /** The MX host name as found in DNS (or the route/relayhost name). */
  mxHost: string;
  /** The next-hop domain (recipient domain, or the route/relayhost name). */
  nextHopDomain: string;
  /** The policy entry that applies, as in the table: 'example.org', '.example.org' or 'default'. */
  policySource?: string;
  /** The domain the policy was looked up for (the recipient domain); default nextHopDomain. */
  policyDomain?: string;
  /**
   * Level `dane`: the secure, usable TLSA records the chain must match (RFC 7672 §3) and the
   * reference identifiers for DANE-TA(2) (TLSA base domain first). Required at level `dane`.
   */
  dane?: { records: readonly TlsaRecord[]; names: readonly string[] } | null;
  /** Where the requirement came from, for the rule text ('DANE', 'MTA-STS'); default the table. */
  via?: string;
  /** The caller's clock (DANE-TA validity). Default: the chain report's view (no extra check). */
  now?: Date;
  /**
   * The certificate must also be valid for the MX host name (RFC 8461 §4.1: MTA-STS `enforce`),
   * whatever names the level itself accepts (`secure` accepts the next-hop domain and names
   * under it). Implied at `verify`.
   */
  mxNameRequired?: boolean;
}

/** Failure kinds, named like RFC 8460 result types where one fits. */
export type PolicyFailure =
  | 'starttls-not-supported'
  | 'starttls-refused'
  | 'tls-handshake-failed'
  | 'certificate-missing'
  | 'certificate-expired'
  | 'certificate-not-trusted'
  | 'certificate-host-mismatch'
  | 'certificate-weak'
  | 'tls-version-deprecated'
  | 'profile-noncompliant'
  | 'dane-mismatch';

export interface PolicyDecision {
  ok: boolean;
  /** Policy failures are always temporary; the queue bounces when the lifetime ends. */
  temporary: boolean;
  /** Which rule was met or failed, e.g. "policy example.org: verify — certificate not trusted (…)". */
  rule: string;
  /** Plain words for logs and the bounce. */
  reason: string;
  /**
   * How to go on: 'tls' = over the session; 'cleartext' = on this connection without TLS;
   * 'cleartext-reconnect' = `may` after a failed handshake: new connection, no STARTTLS
   * (Postfix behaviour); 'defer' = do not send to this MX.
   */
  action: 'tls' | 'cleartext' | 'cleartext-reconnect' | 'defer';
  /** RFC 3463 enhanced status for a failure: 4.7.4 (TLS not available) or 4.7.5 (crypto/cert). */
  enhanced: string | null;
  failures: PolicyFailure[];
  /** Profile findings that broke compliance (ids as the scanner emits them). */
  findings: RuleFinding[];
}

/** The CertFacts tls/evaluate needs, from a chain report (leaf first, as sent). */
export function certFactsFromChain(chain: ChainReport | null): CertFacts[] {
  if (chain === null) return [];
  return chain.chain.map((c: CertInfo) => ({
    keyType: c.keyType,
    keyBits: c.keyBits,
    curve: c.curve,
    signatureHash: c.signatureHash,
    signatureAlgorithm: c.signatureAlgorithm,
    selfSigned: c.selfSigned,
    subject: c.subject,
  }));
}

/** 'TLSv1' → 'TLS 1.0', 'TLSv1.2' → 'TLS 1.2'. */
export function protocolLabel(p: string): string {
  if (p === 'TLSv1') return 'TLS 1.0';
  return p.replace(/^TLSv/, 'TLS ').replace(/^SSLv/, 'SSL ');
}

const MODERN_PROTOCOLS: ReadonlySet<string> = new Set(['TLSv1.2', 'TLSv1.3']);
/** Node's protocol names → the scanner's finding ids. */
const OLD_PROTOCOL_IDS: Readonly<Record<string, string>> = {
  SSLv3: 'protocol-sslv3',
  TLSv1: 'protocol-tls1.0',
  'TLSv1.1': 'protocol-tls1.1',
};

function label(level: TlsLevel, profile: Profile | null): string {
  return profile !== null && requiresTls(level) ? `${level} + ${profile.id}` : level;
}

function policyPhrase(src: string, nextHop: string): string {
  return src === 'default' ? `the default policy (applied to ${nextHop})` : `your policy for ${src}`;
}

/** Postfix `dot-nexthop`: a certificate name under the next-hop domain (wildcards included). */
function matchesDotNexthop(nextHop: string, leaf: CertInfo): string | null {
  const suffix = '.' + nextHop.toLowerCase().replace(/\.$/, '');
  for (const n of leaf.dnsNames) {
    const name = n.toLowerCase().replace(/\.$/, '');
    if (name.length > suffix.length && name.endsWith(suffix)) return n;
  }
  return null;
}

function trustWords(chain: ChainReport): { short: string; words: string; failure: PolicyFailure } {
  const code = chain.trust.error ?? 'UNTRUSTED';
  if (chain.validity.expired || code === 'CERT_HAS_EXPIRED') {
    const day = chain.leaf.notAfter.slice(0, 10);
    return {
      short: `certificate expired (${code})`,
      words: `its certificate expired on ${day}`,
      failure: 'certificate-expired',
    };
  }
  if (chain.validity.notYetValid || code === 'CERT_NOT_YET_VALID') {
    return {
      short: `certificate not yet valid (${code})`,
      words: `its certificate is not valid before ${chain.leaf.notBefore.slice(0, 10)}`,
      failure: 'certificate-not-trusted',
    };
  }
  const self = code === 'DEPTH_ZERO_SELF_SIGNED_CERT' || chain.leaf.selfSigned;
  return {
    short: `certificate not trusted (${code})`,
    words: self
      ? `its certificate is self-signed and not trusted (${code})`
      : `its certificate is not trusted: no chain to a trusted authority from issuer "${chain.leaf.issuer}" (${code})`,
    failure: 'certificate-not-trusted',
  };
}

function names(leaf: CertInfo): string {
  const list = [...leaf.dnsNames, ...leaf.ipAddresses];
  return list.length === 0 ? 'no DNS names' : list.slice(0, 5).join(', ') + (list.length > 5 ? ', …' : '');
}

/** Words for one failing profile finding, naming the negotiated thing. */
function findingWords(f: RuleFinding, s: NegotiatedSession): string {
  if (f.id.startsWith('protocol-')) return `${protocolLabel(s.protocol)} (${f.id})`;
  if (f.id.startsWith('cipher-')) return `the cipher suite ${s.cipher.standardName} (${f.id})`;
  if (f.id === 'group-not-allowed') return `the key exchange group ${s.group ?? 'unknown'} (${f.id})`;
  if (f.id === 'dh-too-small') return `a ${s.ephemeralKeyBits ?? '?'}-bit DH group (${f.id})`;
  const ev = f.evidence !== undefined && f.evidence.length > 0 ? `: ${f.evidence.join('; ')}` : '';
  if (f.id === 'cert-weak-key') return `a certificate key too small${ev} (${f.id})`;
  if (f.id === 'cert-weak-signature') return `a certificate signed with a weak hash${ev} (${f.id})`;
  return `${f.message} (${f.id})`;
}

/** Decide whether this connection's TLS outcome satisfies the policy. Pure. */
export function decide(input: DecideInput): PolicyDecision {
  const { level, profile, session, chain, mxHost, nextHopDomain } = input;
  const src = input.policySource ?? nextHopDomain;
  const head = `policy ${src}: ${label(level, profile)}${input.via !== undefined ? ` (${input.via})` : ''}`;
  const who = `the receiving server ${mxHost}`;
  const phrase = policyPhrase(src, input.policyDomain ?? nextHopDomain);
  const pass = (action: PolicyDecision['action'], what: string, reason: string): PolicyDecision => ({
    ok: true,
    temporary: false,
    rule: `${head} — ${what}`,
    reason,
    action,
    enhanced: null,
    failures: [],
    findings: [],
  });
  const fail = (
    enhanced: string,
    failures: PolicyFailure[],
    what: string,
    reason: string,
    findings: RuleFinding[] = [],
  ): PolicyDecision => ({
    ok: false,
    temporary: true,
    rule: `${head} — ${what}`,
    reason,
    action: 'defer',
    enhanced,
    failures,
    findings,
  });

  if (!attemptsTls(level) && session === null)
    return pass('cleartext', 'cleartext (TLS not attempted)', 'TLS not used by policy');

  if (session === null) {
    if (!input.tlsOffered && input.tlsError === null) {
      if (!requiresTls(level))
        return pass(
          'cleartext',
          'cleartext: STARTTLS not offered',
          `${who} does not offer STARTTLS; sent in cleartext as ${phrase} allows`,
        );
      return fail(
        '4.7.4',
        ['starttls-not-supported'],
        'STARTTLS missing: not offered by the server (or stripped on the way)',
        `${who} did not offer STARTTLS (it is missing, or was stripped from the EHLO reply by an attacker on the path); ${phrase} requires TLS (${label(level, profile)})`,
      );
    }
    const err = input.tlsError ?? 'TLS could not be started';
    const refused = input.tlsFailure === 'refused';
    if (!requiresTls(level)) {
      // RFC 3207 §4.1 / Postfix: opportunistic TLS falls back to cleartext only when TLS is unavailable.
      return refused
        ? pass(
            'cleartext',
            `cleartext: STARTTLS refused (${err})`,
            `${who} refused STARTTLS (${err}); sent in cleartext as ${phrase} allows`,
          )
        : pass(
            'cleartext-reconnect',
            `cleartext on a new connection: TLS handshake failed (${err})`,
            `the TLS handshake with ${mxHost} failed (${err}); retried in cleartext as ${phrase} allows`,
          );
    }
    return refused
      ? fail(
          '4.7.4',
          ['starttls-refused'],
          `STARTTLS refused (${err})`,
          `${who} refused STARTTLS (${err}); ${phrase} requires TLS`,
        )
      : fail(
          '4.7.5',
          ['tls-handshake-failed'],
          `TLS handshake failed (${err})`,
          `the TLS handshake with ${mxHost} failed (${err}); ${phrase} requires TLS (${label(level, profile)})`,
        );
  }

  const tlsDesc = `${protocolLabel(session.protocol)} ${session.cipher.standardName}`;
  if (!requiresTls(level))
    return pass('tls', `TLS (${tlsDesc}; certificate not checked at this level)`, `sent over ${tlsDesc}`);

  const failures: PolicyFailure[] = [];
  const shorts: string[] = [];
  const words: string[] = [];
  let passWhat = 'TLS';

  const verdict = profile === null ? null : evaluate(factsFromSession(session, certFactsFromChain(chain)), profile);
  const bad = verdict === null ? [] : verdict.findings.filter((f) => compareSeverity(f.severity, 'medium') >= 0);

  // Baseline under mandatory TLS, whatever the profile: RFC 8996 forbids TLS 1.0/1.1 (and SSL).
  if (!MODERN_PROTOCOLS.has(session.protocol)) {
    const id = OLD_PROTOCOL_IDS[session.protocol] ?? 'protocol-unknown';
    failures.push('tls-version-deprecated');
    shorts.push(`${protocolLabel(session.protocol)} is deprecated (RFC 8996)`);
    // The profile's own finding says the same in its words; say it once.
    if (!bad.some((f) => f.id === id)) {
      words.push(`${who} negotiated ${protocolLabel(session.protocol)}, which RFC 8996 forbids (${id})`);
    }
  }

  // `dane-only` never reaches here through policy/resolve.ts; if it did, it must mean the same.
  if (level === 'dane' || level === 'dane-only') {
    // RFC 7672 §3: the TLSA records are the only authentication; PKIX trust and the MX name do not
    // count (DANE-EE ignores names and expiry; DANE-TA checks the chain to the matched TA and names).
    const tlsa = input.dane;
    if (tlsa === undefined || tlsa === null || tlsa.records.length === 0) {
      failures.push('dane-mismatch');
      shorts.push('no usable TLSA records');
      words.push(`no usable TLSA records were given for ${mxHost}`);
    } else if (session.peerChain.length === 0) {
      failures.push('certificate-missing');
      shorts.push('no certificate');
      words.push(`${who} sent no certificate to match against its TLSA records`);
    } else {
      const v = verifyDane({
        records: tlsa.records,
        chain: session.peerChain,
        names: tlsa.names,
        now: input.now ?? new Date(),
      });
      if (!v.ok) {
        failures.push('dane-mismatch');
        shorts.push(`DANE: ${v.failure ?? 'no match'}`);
        words.push(
          `${who} presented a certificate chain that its DNSSEC-signed TLSA records (${tlsa.records.map(formatTlsa).join('; ')}) do not authenticate: ${v.reason}`,
        );
      } else if (v.matched !== null) {
        passWhat = `DANE: chain matches TLSA ${formatTlsa(v.matched.record).slice(0, 16)}… at depth ${v.matched.depth}`;
      }
    }
    if (chain !== null && failures.length === 0) {
      // A pinned key is only as strong as the key itself (RSA-1024 can be factored).
      const leaf = chain.chain[0];
      const min =
        leaf === undefined
          ? 0
          : leaf.keyType === 'RSA' || leaf.keyType === 'DSA'
            ? 2048
            : leaf.keyType === 'EC'
              ? 224
              : 0;
      if (leaf !== undefined && leaf.keyBits > 0 && leaf.keyBits < min) {
        failures.push('certificate-weak');
        shorts.push(`certificate key ${leaf.keyType}-${leaf.keyBits} too small`);
        words.push(
          `${who}: its certificate has a ${leaf.keyType}-${leaf.keyBits} key, too small to authenticate (cert-weak-key)`,
        );
      }
    }
  }

  if (requiresAuth(level)) {
    if (chain === null) {
      failures.push('certificate-missing');
      shorts.push('no usable certificate');
      words.push(`${who} sent no usable certificate`);
    } else {
      if (!chain.trust.trusted) {
        const t = trustWords(chain);
        failures.push(t.failure);
        shorts.push(t.short);
        words.push(`${who}: ${t.words}`);
      }
      if (level === 'secure') {
        // Postfix smtp_tls_secure_cert_match = nexthop, dot-nexthop.
        const m = matchHostname(nextHopDomain, chain.leaf) ?? matchesDotNexthop(nextHopDomain, chain.leaf);
        if (m === null) {
          failures.push('certificate-host-mismatch');
          shorts.push(`certificate name matches neither ${nextHopDomain} nor a name under it`);
          words.push(
            `the certificate of ${mxHost} is valid for ${names(chain.leaf)}, not for ${nextHopDomain} or a name under it`,
          );
        } else if (input.mxNameRequired === true && matchHostname(mxHost, chain.leaf) === null) {
          failures.push('certificate-host-mismatch');
          shorts.push(`certificate name does not match ${mxHost} (MTA-STS)`);
          words.push(
            `the certificate of ${mxHost} is valid for ${names(chain.leaf)}, not for the MX host name ${mxHost}, which the domain's MTA-STS policy requires (RFC 8461 §4.1)`,
          );
        } else passWhat = `trusted chain, name ${m} matches next hop ${nextHopDomain}`;
      } else {
        // Postfix "verify" with the MX name from DNS (RFC 9525 DNS-ID, SAN only).
        const m = matchHostname(mxHost, chain.leaf);
        if (m === null) {
          failures.push('certificate-host-mismatch');
          shorts.push(`certificate name does not match ${mxHost}`);
          words.push(`the certificate of ${mxHost} is valid for ${names(chain.leaf)}, not for ${mxHost}`);
        } else passWhat = `trusted chain, name ${m} matches ${mxHost}`;
      }
    }
    if (chain !== null) {
      // An authentication is only as strong as its weakest signature and key: SHA-1/MD5
      // signatures can be forged (chosen-prefix collisions), keys below 112-bit security
      // (NIST SP 800-131A: RSA/DSA < 2048, EC < 224) do not count. Anchors (self-signed after the
      // leaf) are skipped: their own signature is never relied on.
      chain.chain.forEach((c, i) => {
        if (i > 0 && c.selfSigned) return;
        const which = i === 0 ? 'its certificate' : `the intermediate certificate "${c.subject}"`;
        if (c.signatureHash === 'md5' || c.signatureHash === 'sha1') {
          failures.push('certificate-weak');
          shorts.push(`certificate signed with ${c.signatureHash.toUpperCase()}`);
          words.push(`${who}: ${which} is signed with ${c.signatureAlgorithm}, a forgeable hash (cert-weak-signature)`);
        }
        const min = c.keyType === 'RSA' || c.keyType === 'DSA' ? 2048 : c.keyType === 'EC' ? 224 : 0;
        if (c.keyBits > 0 && c.keyBits < min) {
          failures.push('certificate-weak');
          shorts.push(`certificate key ${c.keyType}-${c.keyBits} too small`);
          words.push(`${who}: ${which} has a ${c.keyType}-${c.keyBits} key, too small to authenticate (cert-weak-key)`);
        }
      });
    }
  }

  if (profile !== null && verdict !== null && !verdict.compliant) {
    failures.push('profile-noncompliant');
    shorts.push(`not ${profile.id}-compliant (${bad.map((f) => f.id).join(', ')})`);
    words.push(
      `${who} negotiated ${tlsDesc}, which ${profile.title} does not allow: ${bad.map((f) => findingWords(f, session)).join('; ')}`,
    );
  }

  if (failures.length > 0) {
    const requirement = profile !== null ? `${level} and ${profile.title}` : level;
    return fail(
      '4.7.5',
      [...new Set(failures)],
      shorts.join('; '),
      `${words.join('; ')}; ${phrase} requires ${requirement}`,
      bad,
    );
  }
  const profileWhat = profile === null ? '' : `, ${profile.id}-compliant`;
  return pass('tls', `${passWhat}${profileWhat} (${tlsDesc})`, `sent over ${tlsDesc}`);
}
