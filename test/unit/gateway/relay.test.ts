/**
 * The open-relay battery: every classic relay trick is refused for an unauthenticated client
 * outside `networks` (Postfix: permit_sasl_authenticated, permit_mynetworks,
 * reject_unauth_destination with allow_untrusted_routing = no), and the same recipients are
 * allowed once the client is authenticated or inside `networks`.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PosternError } from '../../../src/core/errors.ts';
import { embeddedDefaults } from '../../../src/config/defaults.ts';
import { isPathError, parsePath } from '../../../src/gateway/address.ts';
import type { ParsedPath } from '../../../src/gateway/address.ts';
import { createRelayPolicy, relayPolicyFromConfig } from '../../../src/gateway/relay.ts';
import type { RelayDecision, RelaySession } from '../../../src/gateway/relay.ts';

const users = {
  addresses(name: string): string[] {
    if (name === 'alice@local.test') return ['alice@local.test', 'Alice.Smith@Local.Test'];
    if (name === 'admin') return ['@relay.test'];
    return [];
  },
};

const policy = createRelayPolicy({
  localDomains: ['local.test'],
  relayDomains: ['relay.test', 'bücher.test'],
  networks: ['192.0.2.0/24', '2001:db8:1::/48'],
  senderMustMatchLogin: true,
  users,
});

const outsider: RelaySession = { authUser: null, clientAddress: '203.0.113.9', listener: { role: 'mx' } };
const outsider6: RelaySession = { authUser: null, clientAddress: '2001:db8:2::9', listener: { role: 'mx' } };
const mapped: RelaySession = { authUser: null, clientAddress: '::ffff:203.0.113.9', listener: { role: 'mx' } };
const inNetworks: RelaySession = { authUser: null, clientAddress: '192.0.2.77', listener: { role: 'mx' } };
const inNetworksMapped: RelaySession = { authUser: null, clientAddress: '::ffff:192.0.2.77', listener: { role: 'mx' } };
const inNetworks6: RelaySession = { authUser: null, clientAddress: '2001:db8:1:5::1', listener: { role: 'mx' } };
const authenticated: RelaySession = {
  authUser: 'alice@local.test',
  clientAddress: '203.0.113.9',
  listener: { role: 'submission' },
};

type Outcome = 'syntax' | 'denied' | 'ok';

/** RCPT TO as smtpd would run it: parse (SMTPUTF8 as given), then the relay decision. */
function rcpt(
  text: string,
  session: RelaySession,
  smtputf8 = true,
): { outcome: Outcome; decision?: RelayDecision; code: number } {
  const p = parsePath(text, { smtputf8, kind: 'forward' });
  if (isPathError(p)) return { outcome: 'syntax', code: p.error.code };
  const d = policy.checkRecipient(p, session);
  return { outcome: d.ok ? 'ok' : 'denied', decision: d, code: d.ok ? 250 : d.code };
}

function path(text: string, kind: 'forward' | 'reverse' = 'forward'): ParsedPath {
  const p = parsePath(text, { smtputf8: true, kind });
  assert.ok(!isPathError(p), text);
  return p;
}

/** Each trick and what must happen to an untrusted client. Never 'ok' except for our own domains. */
const TRICKS: [string, string][] = [
  ['<user@evil.com>', 'foreign domain'],
  ['<user%evil.com@local.test>', "'%' hack"],
  ['<user%evil.com@relay.test>', "'%' hack via a relay domain"],
  ['<evil.com!user@local.test>', "'!' bang path"],
  ['<"user@evil.com"@local.test>', "quoted '@'"],
  ['<"user%evil.com"@local.test>', "quoted '%'"],
  ['<"evil.com!user"@local.test>', "quoted '!'"],
  ['<@local.test:user@evil.com>', 'source route ending abroad'],
  ['<@local.test,@relay.test:user@evil.com>', 'two-hop source route'],
  ['<user@[1.2.3.4]>', 'IPv4 address literal'],
  ['<user@[192.0.2.1]>', 'literal of a trusted network'],
  ['<user@[IPv6:2001:db8::1]>', 'IPv6 address literal'],
  ['<user@local.test.evil.com>', 'our domain as a prefix'],
  ['<user@evillocal.test>', 'our domain as a suffix without a dot'],
  ['<user@sub.local.test>', 'a subdomain of ours (exact match only)'],
  ['<user@evil.com.>', 'trailing dot abroad'],
  ['<user@local.test.>', 'trailing dot on ours'],
  ['<user@EVIL.COM>', 'upper case abroad'],
  ['<user@lоcal.test>', 'Cyrillic о lookalike'],
  ['<user@ｌｏｃａｌ.test>', 'fullwidth lookalike'],
  ['<user@local.test@evil.com>', 'two @'],
  ['<postmaster@evil.com>', 'postmaster abroad'],
  ['<user@local.test\r\nRCPT TO:<x@evil.com>>', 'CRLF injection'],
  ['<user@xn--lcal-8cd.test>', 'punycode lookalike'],
  ['user@evil.com', 'no angle brackets'],
];

describe('open-relay battery: unauthenticated, outside networks', () => {
  for (const session of [outsider, outsider6, mapped]) {
    for (const [text, why] of TRICKS) {
      test(`${why}: ${JSON.stringify(text)} from ${session.clientAddress}`, () => {
        const r = rcpt(text, session);
        assert.notEqual(r.outcome, 'ok', `${text} was accepted`);
        if (r.outcome === 'denied') {
          assert.equal(r.code, 554);
          assert.ok(r.decision && !r.decision.ok);
          if (r.decision && !r.decision.ok) {
            assert.equal(r.decision.enhanced, '5.7.1');
            assert.match(r.decision.message, /^<.*>: Relay access denied$/);
          }
        } else {
          assert.ok(r.code === 501 || r.code === 553, `syntax reply ${r.code}`);
        }
      });
    }
  }
  test('without SMTPUTF8, lookalikes are refused as 553 5.6.7 before any relay decision', () => {
    assert.deepEqual(
      [rcpt('<user@lоcal.test>', outsider, false).outcome, rcpt('<user@lоcal.test>', outsider, false).code],
      ['syntax', 553],
    );
  });
  test('the classic tricks are relay denials (554 5.7.1), not mere syntax errors', () => {
    for (const t of [
      '<user%evil.com@local.test>',
      '<evil.com!user@local.test>',
      '<"user@evil.com"@local.test>',
      '<user@[1.2.3.4]>',
      '<@local.test:user@evil.com>',
    ])
      assert.equal(rcpt(t, outsider).code, 554, t);
  });
});

describe('what an unauthenticated outsider may do', () => {
  test('deliver to our local and relay domains, in any case', () => {
    for (const t of [
      '<user@local.test>',
      '<User@LOCAL.TEST>',
      '<user@relay.test>',
      '<"john smith"@local.test>',
      '<@evil.com:user@local.test>',
      '<x@bücher.test>',
      '<x@xn--bcher-kva.test>',
      '<x@BÜCHER.test>',
    ]) {
      const r = rcpt(t, outsider);
      assert.equal(r.outcome, 'ok', t);
    }
    const d = policy.checkRecipient(path('<user@local.test>'), outsider);
    assert.deepEqual(d, { ok: true, reason: 'local-domain' });
    assert.deepEqual(policy.checkRecipient(path('<user@relay.test>'), outsider), { ok: true, reason: 'relay-domain' });
  });
  test('<Postmaster> without a domain is always accepted (RFC 5321 §4.5.1)', () => {
    for (const t of ['<postmaster>', '<Postmaster>', '<POSTMASTER>']) {
      assert.deepEqual(policy.checkRecipient(path(t), outsider), {
        ok: true,
        reason: 'postmaster',
        rewrite: 'postmaster@local.test',
      });
    }
    assert.equal(rcpt('<postmaster@local.test>', outsider).outcome, 'ok');
  });
  test('the null path is never a recipient', () => {
    const nul = path('<>', 'reverse');
    const d = policy.checkRecipient(nul, authenticated);
    assert.equal(d.ok, false);
    assert.equal(d.ok ? 0 : d.code, 501);
  });
});

describe('trusted clients may relay anywhere', () => {
  for (const session of [authenticated, inNetworks, inNetworksMapped, inNetworks6]) {
    test(`${session.authUser ?? session.clientAddress}`, () => {
      for (const [text] of TRICKS) {
        const r = rcpt(text, session);
        // Whatever parses is allowed; syntax errors stay syntax errors.
        if (r.outcome !== 'syntax') assert.equal(r.outcome, 'ok', text);
      }
      const d = policy.checkRecipient(path('<user@evil.com>'), session);
      assert.deepEqual(d, { ok: true, reason: session.authUser === null ? 'mynetworks' : 'authenticated' });
    });
  }
  test('network boundaries are exact', () => {
    assert.equal(policy.isTrustedNetwork('192.0.2.255'), true);
    assert.equal(policy.isTrustedNetwork('192.0.3.0'), false);
    assert.equal(policy.isTrustedNetwork('2001:db8:1:ffff::1'), true);
    assert.equal(policy.isTrustedNetwork('2001:db8:2::1'), false);
    assert.equal(policy.isTrustedNetwork('::ffff:192.0.2.1'), true);
    assert.equal(policy.isTrustedNetwork('not an ip'), false);
  });
});

describe('MAIL FROM', () => {
  const sender = (text: string, session: RelaySession): RelayDecision =>
    policy.checkSender(path(text, 'reverse'), session);
  test('an authenticated user may use only their own addresses (case-insensitive)', () => {
    assert.deepEqual(sender('<alice@local.test>', authenticated), { ok: true, reason: 'own-address' });
    assert.deepEqual(sender('<ALICE@Local.Test>', authenticated), { ok: true, reason: 'own-address' });
    assert.deepEqual(sender('<alice.smith@local.test>', authenticated), { ok: true, reason: 'own-address' });
    for (const t of [
      '<bob@local.test>',
      '<alice@local.test.evil.com>',
      '<alice@evil.com>',
      '<"alice@local.test"@evil.com>',
      '<alice@[192.0.2.1]>',
    ]) {
      const d = sender(t, authenticated);
      assert.equal(d.ok, false, t);
      if (!d.ok) {
        assert.equal(d.code, 553);
        assert.equal(d.enhanced, '5.7.1');
        assert.match(d.message, /: Sender address rejected: not owned by user alice@local\.test$/);
      }
    }
  });
  test("'@domain' grants the whole domain, nothing more", () => {
    const admin: RelaySession = { ...authenticated, authUser: 'admin' };
    assert.equal(sender('<anyone@relay.test>', admin).ok, true);
    assert.equal(sender('<anyone@RELAY.test>', admin).ok, true);
    assert.equal(sender('<anyone@sub.relay.test>', admin).ok, false);
    assert.equal(sender('<anyone@relay.test.evil.com>', admin).ok, false);
  });
  test('a user with no addresses may not send; the null sender is allowed (RFC 8098 MDNs)', () => {
    const nobody: RelaySession = { ...authenticated, authUser: 'nobody' };
    assert.equal(sender('<nobody@local.test>', nobody).ok, false);
    assert.deepEqual(sender('<>', authenticated), { ok: true, reason: 'null-sender' });
  });
  test('senderMustMatchLogin: false lets authenticated users use any sender', () => {
    const loose = createRelayPolicy({
      localDomains: [],
      relayDomains: [],
      networks: [],
      senderMustMatchLogin: false,
      users: null,
    });
    assert.deepEqual(loose.checkSender(path('<ceo@elsewhere.example>', 'reverse'), authenticated), {
      ok: true,
      reason: 'unrestricted-sender',
    });
  });
  test('unauthenticated clients: any sender on mx, AUTH required on submission unless in networks', () => {
    assert.equal(sender('<someone@evil.com>', outsider).ok, true);
    const sub: RelaySession = { ...outsider, listener: { role: 'submission' } };
    const d = sender('<someone@local.test>', sub);
    assert.deepEqual(d, { ok: false, code: 530, enhanced: '5.7.0', message: 'Authentication required' });
    assert.equal(sender('<someone@local.test>', { ...inNetworks, listener: { role: 'submission' } }).ok, true);
  });
});

describe('postmaster, recipient validation, local senders', () => {
  const strict = createRelayPolicy({
    localDomains: ['local.test'],
    relayDomains: ['relay.test'],
    networks: ['192.0.2.0/24'],
    senderMustMatchLogin: true,
    users,
    postmaster: 'hostmaster@local.test',
    recipients: new Map([['Relay.Test', ['alice', 'Bob']]]),
    rejectUnauthenticatedLocalSenders: true,
  });
  test('<Postmaster> is rewritten to the configured address (RFC 5321 §4.5.1)', () => {
    assert.deepEqual(strict.checkRecipient(path('<POSTMASTER>'), outsider), {
      ok: true,
      reason: 'postmaster',
      rewrite: 'hostmaster@local.test',
    });
  });
  test('no domain of our own and no postmaster: <Postmaster> gets 550 5.1.1 instead of a bounce', () => {
    const none = createRelayPolicy({
      localDomains: [],
      relayDomains: [],
      networks: [],
      senderMustMatchLogin: true,
      users: null,
    });
    const d = none.checkRecipient(path('<Postmaster>'), authenticated);
    assert.equal(d.ok, false);
    assert.equal(d.ok ? 0 : d.code, 550);
  });
  test('listed domains: unknown local parts 550 5.1.1 for everyone; case-insensitive; postmaster always valid', () => {
    for (const s of [outsider, inNetworks, authenticated]) {
      const d = strict.checkRecipient(path('<carol@relay.test>'), s);
      assert.deepEqual(d, {
        ok: false,
        code: 550,
        enhanced: '5.1.1',
        message: '<carol@relay.test>: Recipient address rejected: User unknown',
      });
    }
    assert.equal(strict.checkRecipient(path('<ALICE@relay.test>'), outsider).ok, true);
    assert.equal(strict.checkRecipient(path('<bob@RELAY.TEST>'), outsider).ok, true);
    assert.equal(strict.checkRecipient(path('<PostMaster@relay.test>'), outsider).ok, true);
    // Unlisted domains are not validated.
    assert.equal(strict.checkRecipient(path('<anyone@local.test>'), outsider).ok, true);
  });
  test('rejectUnauthenticatedLocalSenders: outsiders using our domains get 553 5.7.1', () => {
    for (const from of ['<x@local.test>', '<x@Relay.Test>']) {
      const d = strict.checkSender(path(from, 'reverse'), outsider);
      assert.equal(d.ok ? 0 : d.code, 553, from);
      assert.equal(d.ok ? '' : d.enhanced, '5.7.1');
    }
    assert.equal(strict.checkSender(path('<x@local.test>', 'reverse'), inNetworks).ok, true);
    assert.equal(strict.checkSender(path('<alice@local.test>', 'reverse'), authenticated).ok, true);
    assert.equal(strict.checkSender(path('<x@elsewhere.test>', 'reverse'), outsider).ok, true);
    assert.equal(strict.checkSender(path('<>', 'reverse'), outsider).ok, true);
    // Off by default.
    assert.equal(policy.checkSender(path('<x@local.test>', 'reverse'), outsider).ok, true);
  });
  test('the embedded default config delivers <Postmaster> to postmaster@localhost, its local domain', () => {
    const p = relayPolicyFromConfig(embeddedDefaults('/nonexistent/state').relay, null);
    const d = p.checkRecipient(path('<Postmaster>'), { ...outsider, clientAddress: '127.0.0.1' });
    assert.deepEqual(d, { ok: true, reason: 'postmaster', rewrite: 'postmaster@localhost' });
  });
  test('a bad postmaster address or recipients domain is a config error', () => {
    const base = { localDomains: [], relayDomains: [], networks: [], senderMustMatchLogin: true, users: null };
    assert.throws(() => createRelayPolicy({ ...base, postmaster: 'nobody' }), /relay\.postmaster/);
    assert.throws(
      () => createRelayPolicy({ ...base, recipients: new Map([['[1.2.3.4]', ['a']]]) }),
      /relay\.recipients/,
    );
  });
});

describe('construction', () => {
  test('bad domains or networks are config errors', () => {
    assert.throws(
      () =>
        createRelayPolicy({
          localDomains: ['bad domain'],
          relayDomains: [],
          networks: [],
          senderMustMatchLogin: true,
          users: null,
        }),
      (e) => e instanceof PosternError && e.code === 'config-invalid',
    );
    assert.throws(
      () =>
        createRelayPolicy({
          localDomains: [],
          relayDomains: [],
          networks: ['0.0.0.0/0'],
          senderMustMatchLogin: true,
          users: null,
        }),
      (e) => e instanceof PosternError && /too wide/.test(e.message),
    );
  });
  test('from the config section', () => {
    const p = relayPolicyFromConfig(
      { domains: ['relay.test'], localDomains: [], networks: ['127.0.0.0/8'], senderMustMatchLogin: true },
      null,
    );
    assert.equal(p.checkRecipient(path('<x@relay.test>'), outsider).ok, true);
    assert.equal(p.checkRecipient(path('<x@local.test>'), outsider).ok, false);
    assert.equal(p.isTrustedNetwork('127.0.0.1'), true);
  });
});
