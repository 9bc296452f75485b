/**
 * loadConfig: the documented example loads; every kind of mistake is reported as
 * file:line:column: key.path: message (PosternError 'config-invalid'); the embedded default
 * generates its certificate once.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { PosternError } from '../../../src/core/errors.ts';
import { embeddedDefaults, loadEmbeddedConfig } from '../../../src/config/defaults.ts';
import { loadConfig, parseConfig } from '../../../src/config/load.ts';
import { parseDuration, parseSize } from '../../../src/config/schema.ts';

const EXAMPLE = fileURLToPath(new URL('../../../docs/postern.example.yaml', import.meta.url));
const PROFILE = fileURLToPath(new URL('../../fixtures/profiles/example.yaml', import.meta.url));

let dir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'postern-config-'));
  await mkdir(join(dir, 'tls'));
  await writeFile(join(dir, 'tls', 'cert.pem'), 'not checked here\n');
  await writeFile(join(dir, 'tls', 'key.pem'), 'not checked here\n');
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const MINIMAL = [
  'hostname: mail.example.org',
  'tls: { cert: tls/cert.pem, key: tls/key.pem }',
  'listen:',
  '  - { name: mx, address: 127.0.0.1, port: 2525, mode: starttls, role: mx }',
  '',
].join('\n');

/** The PosternError a promise rejects with; fails when it resolves. */
async function errorOf(p: Promise<unknown>): Promise<PosternError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof PosternError, `expected PosternError, got ${String(e)}`);
    assert.equal(e.code, 'config-invalid');
    return e;
  }
  assert.fail('expected an error');
}

const parse = (text: string) => parseConfig(text, 'postern.yaml', dir);

describe('loadConfig: the documented example', () => {
  test('docs/postern.example.yaml loads with the values it documents', async () => {
    const path = join(dir, 'postern.yaml');
    await copyFile(EXAMPLE, path);
    const c = await loadConfig(path);
    assert.equal(c.source, path);
    assert.equal(c.hostname, 'mail.example.org');
    assert.equal(c.tls.cert, join(dir, 'tls', 'cert.pem'));
    assert.equal(c.users, join(dir, 'users.yaml'));
    assert.deepEqual(
      c.listen.map((l) => [l.name, l.port, l.mode, l.role, l.auth]),
      [
        ['mx', 25, 'starttls', 'mx', 'none'],
        ['submission', 587, 'starttls', 'submission', 'required'],
        ['submissions', 465, 'implicit', 'submission', 'required'],
      ],
    );
    assert.deepEqual(c.relay.domains, ['example.org', 'example.net']);
    assert.deepEqual(c.relay.networks, ['127.0.0.0/8', '::1/128']);
    assert.equal(c.relay.senderMustMatchLogin, true);
    assert.equal(c.queue.maxLifetimeMs, 5 * 86_400_000);
    assert.equal(c.queue.delayWarningMs, 4 * 3_600_000);
    assert.deepEqual(c.queue.retry, { initialMs: 300_000, maxMs: 3_600_000 });
    assert.deepEqual(c.routes.get('example.net'), { host: 'mx.internal.example.net', port: 25 });
    assert.equal(c.policy.default.level, 'dane');
    assert.deepEqual(c.dns, { servers: ['127.0.0.1'], trustAd: 'loopback' });
    assert.deepEqual(c.mtaSts, { enabled: true, cacheDir: join(c.queue.dir, 'mta-sts') });
    assert.equal(c.tlsrpt.organization, 'Example Org');
    assert.equal(c.tlsrpt.contact, 'mailto:postmaster@mail.example.org');
    assert.equal(c.tlsrpt.from, `tlsrpt-noreply@${c.hostname}`);
    const bund = c.policy.domains.get('bund.example');
    assert.equal(bund?.level, 'secure');
    assert.equal(bund?.profile?.kind, 'builtin');
    assert.equal(bund?.profile?.profile.id, 'bsi');
    assert.equal(c.limits.maxMessageSize, 25_000_000);
    assert.equal(c.limits.commandTimeoutMs, 300_000);
    assert.deepEqual(c.authRateLimit.perIp, { failures: 5, windowMs: 900_000 });
    assert.deepEqual(c.admin, {
      address: '127.0.0.1',
      port: 2580,
      tokenFile: join(c.queue.dir, 'admin.token'),
      metricsTokenFile: null,
    });
  });

  test('a minimal config gets the documented defaults', async () => {
    const c = await parse(MINIMAL);
    assert.equal(c.users, null);
    assert.deepEqual(c.relay, {
      domains: [],
      localDomains: [],
      networks: [],
      senderMustMatchLogin: true,
      // No domain of our own: <Postmaster> goes to this host's postmaster (RFC 5321 §4.5.1).
      postmaster: 'postmaster@mail.example.org',
      recipients: new Map(),
      rejectUnauthenticatedLocalSenders: false,
    });
    assert.equal(c.limits.maxSubmissionConnections, 50);
    assert.equal(c.limits.junkCommandLimit, 100);
    assert.equal(c.limits.dataDeadlineMs, 900_000);
    assert.equal(c.limits.stressTimeoutMs, 10_000);
    assert.equal(c.limits.stressThreshold, 80);
    assert.equal(c.queue.dir, join(dir, 'var', 'queue'));
    assert.equal(c.queue.backend, 'sqlite');
    assert.deepEqual(c.policy.default, { level: 'may', profile: null });
    assert.deepEqual(c.dns.trustAd, 'loopback');
    assert.equal(c.mtaSts.enabled, true);
    assert.equal(c.tlsrpt.enabled, true);
    assert.equal(c.tlsrpt.store, join(dir, 'var', 'queue', 'tlsrpt.sqlite'));
    assert.equal(c.limits.maxRecipients, 100);
    assert.equal(c.limits.maxLineLength, 1000);
    assert.equal(c.limits.dataTimeoutMs, 600_000);
    assert.equal(c.admin, null);
    assert.equal(c.log.level, 'info');
    assert.equal(c.listen[0]?.clientCertificates, 'none');
  });

  test('domains are normalised (case, trailing dot, IDN → A-label) and a profile file is loaded', async () => {
    await copyFile(PROFILE, join(dir, 'partner.yaml'));
    const c = await parse(
      `${MINIMAL}relay:\n  domains: [Example.ORG., bücher.example]\npolicy:\n  domains:\n    Partner.Example: { level: encrypt, profile: partner.yaml }\nroutes:\n  EXAMPLE.net: '[2001:db8::25]:2525'\nrelayhost: smarthost.example.com\n`,
    );
    assert.deepEqual(c.relay.domains, ['example.org', 'xn--bcher-kva.example']);
    const p = c.policy.domains.get('partner.example');
    assert.equal(p?.profile?.kind, 'file');
    assert.equal(p?.profile?.kind === 'file' ? p.profile.path : '', join(dir, 'partner.yaml'));
    assert.equal(p?.profile?.profile.id, 'example-mail-policy');
    assert.deepEqual(c.routes.get('example.net'), { host: '2001:db8::25', port: 2525 });
    assert.deepEqual(c.relayhost, { host: 'smarthost.example.com', port: 25 });
  });
});

describe('loadConfig: relay recipients, postmaster and the smtpd slot limits', () => {
  test('relay.postmaster, relay.recipients (domains normalised, local parts lower-cased), local senders', async () => {
    const c = await parse(
      `${MINIMAL}relay:\n  localDomains: [Example.ORG]\n  postmaster: hostmaster@example.org\n  recipients:\n    EXAMPLE.org: [Alice, bob, alice]\n  rejectUnauthenticatedLocalSenders: true\nlimits:\n  maxSubmissionConnections: 30\n  junkCommandLimit: 20\n  dataDeadline: 20m\n  stressTimeout: 5s\n  stressThreshold: 70\n`,
    );
    assert.equal(c.relay.postmaster, 'hostmaster@example.org');
    assert.deepEqual([...(c.relay.recipients ?? new Map())], [['example.org', ['alice', 'bob']]]);
    assert.equal(c.relay.rejectUnauthenticatedLocalSenders, true);
    assert.equal(c.limits.maxSubmissionConnections, 30);
    assert.equal(c.limits.junkCommandLimit, 20);
    assert.equal(c.limits.dataDeadlineMs, 1_200_000);
    assert.equal(c.limits.stressTimeoutMs, 5000);
    assert.equal(c.limits.stressThreshold, 70);
  });
  test('the default postmaster is at our first domain', async () => {
    const c = await parse(`${MINIMAL}relay:\n  domains: [relay.example]\n  localDomains: [local.example]\n`);
    assert.equal(c.relay.postmaster, 'postmaster@local.example');
  });
  test('errors: recipients of a domain that is not ours, bad local parts, bad postmaster, bad threshold', async () => {
    const e = await errorOf(
      parse(
        `${MINIMAL}relay:\n  domains: [example.org]\n  postmaster: nobody\n  recipients:\n    other.example: [a]\n    example.org: ['a@b']\nlimits:\n  stressThreshold: 0\n`,
      ),
    );
    assert.match(e.message, /postern\.yaml:7:15: relay\.postmaster: expected a mail address/);
    assert.match(e.message, /relay\.recipients\.example\.org\[0\]: expected a local part/);
    assert.match(e.message, /limits\.stressThreshold: expected integer 1\.\.100, got 0/);
  });
  test('errors: recipients listed for a domain that is not in localDomains or domains', async () => {
    const e = await errorOf(
      parse(`${MINIMAL}relay:\n  domains: [example.org]\n  recipients:\n    other.example: [a]\n`),
    );
    assert.match(e.message, /relay\.recipients.*'other\.example' is not in relay\.localDomains or relay\.domains/);
  });
});

describe('loadConfig: errors name file, line, column and key', () => {
  test('port out of range (the issue example)', async () => {
    const text =
      MINIMAL + '  - { name: sub, address: 127.0.0.1, port: 70000, mode: starttls, role: submission, auth: none }\n';
    const e = await errorOf(parse(text));
    assert.equal(e.message, 'postern.yaml:5:44: listen[1].port: expected integer 1..65535, got 70000');
    assert.match(e.hint ?? '', /docs\/configuration\.md/);
  });

  test('unknown keys at any depth, reported at the key', async () => {
    const e = await errorOf(parse(`${MINIMAL}relay:\n  senderMustMatchLogn: false\nlimts: {}\n`));
    assert.equal(
      e.message,
      "postern.yaml:6:3: relay.senderMustMatchLogn: unknown key 'senderMustMatchLogn'\npostern.yaml:7:1: limts: unknown key 'limts'",
    );
  });

  test('durations, sizes and enums are strict', async () => {
    const e = await errorOf(
      parse(
        `${MINIMAL}queue:\n  maxLifetime: 5 days\n  retry: { initial: 300 }\nlimits:\n  maxMessageSize: 25mb\npolicy:\n  default: { level: verfy }\n`,
      ),
    );
    const lines = e.message.split('\n');
    assert.match(lines[0] ?? '', /^postern\.yaml:6:16: queue\.maxLifetime: expected a duration such as/);
    assert.match(
      lines[1] ?? '',
      /^postern\.yaml:7:21: queue\.retry\.initial: expected a duration string such as '5m', got 300$/,
    );
    assert.match(lines[2] ?? '', /^postern\.yaml:9:19: limits\.maxMessageSize: expected a size such as '25MB'/);
    assert.equal(
      lines[3],
      "postern.yaml:11:21: policy.default.level: expected one of none, may, encrypt, dane, dane-only, verify, secure, got 'verfy'",
    );
  });

  test('RFC minimums are enforced (100 recipients, 1000-octet lines)', async () => {
    const e = await errorOf(parse(`${MINIMAL}limits:\n  maxRecipients: 10\n  maxLineLength: 512\n`));
    assert.match(e.message, /6:18: limits\.maxRecipients: expected integer 100\.\.100000, got 10/);
    assert.match(e.message, /7:18: limits\.maxLineLength: expected integer 1000\.\.1048576, got 512/);
  });

  test('networks: host bits and open-relay-wide ranges are refused', async () => {
    const e = await errorOf(parse(`${MINIMAL}relay:\n  networks: [10.1.2.3/8, 0.0.0.0/0, '::/0', 192.0.2.0/24]\n`));
    const lines = e.message.split('\n');
    assert.equal(lines.length, 3);
    assert.match(
      lines[0] ?? '',
      /^postern\.yaml:6:14: relay\.networks\[0\]: '10\.1\.2\.3\/8' has host bits set; did you mean 10\.0\.0\.0\/8\?$/,
    );
    assert.match(lines[1] ?? '', /relay\.networks\[1\]: '0\.0\.0\.0\/0' is too wide .*open relay/);
    assert.match(lines[2] ?? '', /relay\.networks\[2\]: '::\/0' is too wide/);
  });

  test('missing required keys and bad hostname', async () => {
    const e = await errorOf(parse('hostname: -bad-.example\nlisten: []\n'));
    assert.match(e.message, /^postern\.yaml:1:1: tls: missing \(expected object\)$/m);
    assert.match(e.message, /^postern\.yaml:1:11: hostname: '-bad-\.example' is not a domain name/m);
    assert.match(e.message, /^postern\.yaml:2:9: listen: expected at least one listener$/m);
  });

  test('cross-key rules: duplicate listeners, AUTH without users, AUTH on mx, client certs without CA', async () => {
    const text = [
      'hostname: mail.example.org',
      'tls: { cert: tls/cert.pem, key: tls/key.pem }',
      'listen:',
      '  - { name: mx, address: 0.0.0.0, port: 25, mode: starttls, role: mx, auth: required }',
      '  - { name: mx, address: 127.0.0.1, port: 25, mode: starttls, role: submission }',
      '  - { name: s, address: 127.0.0.1, port: 465, mode: implicit, role: submission, clientCertificates: request }',
      '',
    ].join('\n');
    const e = await errorOf(parse(text));
    // Defaulted keys (listen[1].auth) are reported at their listener.
    assert.deepEqual(e.message.split('\n'), [
      "postern.yaml:4:77: listen[0].auth: an mx listener cannot require AUTH: other mail servers do not log in (use role 'submission')",
      "postern.yaml:4:77: listen[0].auth: auth 'required' needs a users file (set 'users' at the top level)",
      "postern.yaml:5:5: listen[1].auth: auth 'required' needs a users file (set 'users' at the top level)",
      "postern.yaml:5:13: listen[1].name: listener name 'mx' is already used by listen[0]",
      'postern.yaml:5:43: listen[1].port: 127.0.0.1:25 collides with listen[0]',
      "postern.yaml:6:5: listen[2].auth: auth 'required' needs a users file (set 'users' at the top level)",
      "postern.yaml:6:101: listen[2].clientCertificates: 'request' needs tls.clientCa (the CAs client certificates must chain to)",
    ]);
  });

  test('missing certificate files, remote admin, profile problems, queue timing', async () => {
    const text = [
      'hostname: mail.example.org',
      'tls: { cert: tls/cert.pem, key: tls/nokey.pem }',
      'listen:',
      '  - { name: mx, address: 127.0.0.1, port: 2525, mode: starttls, role: mx }',
      'admin: { address: 0.0.0.0, port: 2580 }',
      'queue: { maxLifetime: 2h, delayWarning: 4h, retry: { initial: 2h, max: 1h } }',
      'policy:',
      '  default: { level: none, profile: bsi }',
      '  domains:',
      '    example.org: { level: verify, profile: nosuch.yaml }',
      '    EXAMPLE.org.: { level: verify }',
      '',
    ].join('\n');
    const e = await errorOf(parse(text));
    const lines = e.message.split('\n');
    assert.match(lines[0] ?? '', /^postern\.yaml:2:33: tls\.key: .*nokey\.pem: no such file$/);
    assert.match(
      lines[1] ?? '',
      /^postern\.yaml:5:19: admin\.address: the admin API .* bearer token would cross the network in clear/,
    );
    assert.match(lines[2] ?? '', /^postern\.yaml:6:41: queue\.delayWarning: the delay warning would come after/);
    assert.match(lines[3] ?? '', /^postern\.yaml:6:63: queue\.retry\.initial: the first retry interval is longer/);
    assert.match(lines[4] ?? '', /^postern\.yaml:8:36: policy\.default\.profile: a profile needs TLS/);
    assert.match(
      lines[5] ?? '',
      /^postern\.yaml:10:44: policy\.domains\.example\.org\.profile: not a built-in profile .*cannot read profile: ENOENT/,
    );
    assert.match(
      lines[6] ?? '',
      /^postern\.yaml:11:5: policy\.domains\.EXAMPLE\.org\.: 'EXAMPLE\.org\.' is listed twice \(as example\.org\)$/,
    );
  });

  test('YAML syntax errors and duplicate keys', async () => {
    const e = await errorOf(parse(`${MINIMAL}hostname: again\n`));
    assert.match(e.message, /^postern\.yaml:5:1: Map keys must be unique/);
    const e2 = await errorOf(parse('hostname: [unclosed\n'));
    assert.match(e2.message, /^postern\.yaml:\d+:\d+: /);
  });

  test('an unreadable file is config-invalid with a hint', async () => {
    const e = await errorOf(loadConfig(join(dir, 'nope.yaml')));
    assert.match(e.message, /nope\.yaml: cannot read config: ENOENT/);
    assert.ok(e.hint);
  });
});

describe('duration and size parsing', () => {
  test('durations', () => {
    assert.equal(parseDuration('5m'), 300_000);
    assert.equal(parseDuration('1h30m'), 5_400_000);
    assert.equal(parseDuration('250ms'), 250);
    assert.equal(parseDuration('2w'), 1_209_600_000);
    for (const bad of ['', '5', '5 m', '30m1h', '5M', '1.5h', '-5m', '5mm']) {
      assert.equal(typeof parseDuration(bad), 'object', bad);
    }
  });
  test('sizes', () => {
    assert.equal(parseSize('25MB'), 25_000_000);
    assert.equal(parseSize('10MiB'), 10_485_760);
    assert.equal(parseSize('1 KB'), 1000);
    assert.equal(parseSize(4096), 4096);
    for (const bad of ['25mb', '1.5MB', '25 M', '', '-1', 'MB']) assert.equal(typeof parseSize(bad), 'object', bad);
    assert.equal(typeof parseSize(1.5), 'object');
  });
});

describe('embedded default', () => {
  test('loopback high ports, AUTH required on submission, state under the state dir', () => {
    const c = embeddedDefaults(join(dir, 'state'));
    assert.equal(c.source, null);
    assert.deepEqual(
      c.listen.map((l) => `${l.name} ${l.address}:${l.port} ${l.mode} ${l.role} ${l.auth}`),
      [
        'mx 127.0.0.1:2525 starttls mx none',
        'submission 127.0.0.1:2587 starttls submission required',
        'submissions 127.0.0.1:2465 implicit submission required',
      ],
    );
    assert.deepEqual(c.admin, {
      address: '127.0.0.1',
      port: 2580,
      tokenFile: join(dir, 'state', 'admin.token'),
      metricsTokenFile: null,
    });
    assert.equal(c.queue.dir, join(dir, 'state', 'queue'));
    assert.equal(c.users, join(dir, 'state', 'users.yaml'));
    assert.equal(c.policy.default.level, 'may');
    assert.deepEqual(c.relay.networks, ['127.0.0.0/8', '::1/128']);
  });

  test('generates a self-signed certificate once (key mode 0600) and keeps it', async () => {
    const state = join(dir, 'embedded');
    const c = await loadEmbeddedConfig(state);
    const pem = await readFile(c.tls.cert, 'utf8');
    const cert = new X509Certificate(pem);
    assert.equal(cert.subject, cert.issuer);
    assert.match(cert.subjectAltName ?? '', /DNS:localhost/);
    assert.ok(cert.checkPrivateKey((await import('node:crypto')).createPrivateKey(await readFile(c.tls.key))));
    assert.equal((await stat(c.tls.key)).mode & 0o777, 0o600);
    await loadEmbeddedConfig(state);
    assert.equal(await readFile(c.tls.cert, 'utf8'), pem, 'regenerated a valid certificate');
  });
});
