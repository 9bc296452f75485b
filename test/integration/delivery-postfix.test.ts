/**
 * postern delivers to a real Postfix acting as the destination MX (loopback, STARTTLS), under
 * `encrypt` and under `verify` with Postfix's certificate as the trust anchor; the message must
 * arrive intact in Postfix's Maildir. A wrong trust anchor must defer and deliver nothing.
 * Needs root and Debian's postfix (scripts/install-peers.sh); skipped otherwise unless
 * POSTERN_REQUIRE_PEERS=1.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { makeSelfSignedCert } from './peers/certs.ts';
import type { TestCert } from './peers/certs.ts';
import { POSTFIX_TEST_DOMAIN, postfixAvailable, startPostfix } from './peers/postfix.ts';
import type { PostfixInstance } from './peers/postfix.ts';
import { peerSkipReason } from './peers/require.ts';
import { deliverMessage } from '../../src/delivery/deliver.ts';
import type { DeliveryDeps } from '../../src/delivery/deliver.ts';
import { PolicyTable } from '../../src/policy/table.ts';
import type { PolicyEntrySpec } from '../../src/policy/table.ts';
import { createDnsClient } from '../../src/dns/resolver.ts';
import { queuedMessage } from '../helpers/queued.ts';

const noPostfix = peerSkipReason(postfixAvailable(), 'postfix');
const MX = 'mx.peer.test';

function body(tag: string): Buffer {
  // Date and Message-ID present, so Postfix's cleanup adds nothing inside the original header.
  return Buffer.from(
    `From: <alice@sender.test>\r\nTo: <bob@${POSTFIX_TEST_DOMAIN}>\r\nSubject: ${tag}\r\n` +
      `Date: Mon, 01 Jan 2024 00:00:00 +0000\r\nMessage-ID: <${tag}@sender.test>\r\n\r\n` +
      'first line\r\n.a line that starts with a dot\r\n..two\r\n.\r\nlast line\r\n',
  );
}

/** Wait until a Maildir file containing `needle` appears (local delivery is asynchronous). */
async function waitForMail(maildir: string, needle: string, timeoutMs = 20_000): Promise<Buffer> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const sub of ['new', 'cur']) {
      const dir = join(maildir, sub);
      const files = await readdir(dir).catch(() => [] as string[]);
      for (const f of files) {
        const b = await readFile(join(dir, f));
        if (b.includes(needle)) return b;
      }
    }
    if (Date.now() > deadline) throw new Error(`no mail with ${needle} in ${maildir}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function countMail(maildir: string, needle: string): Promise<number> {
  let n = 0;
  for (const sub of ['new', 'cur']) {
    for (const f of await readdir(join(maildir, sub)).catch(() => [] as string[])) {
      if ((await readFile(join(maildir, sub, f))).includes(needle)) n++;
    }
  }
  return n;
}

describe('delivery to a real Postfix MX over STARTTLS', { skip: noPostfix }, () => {
  let pf: PostfixInstance;
  let cert: TestCert;

  before(async () => {
    cert = await makeSelfSignedCert({ dnsNames: [MX], rsaBits: 3072 });
    pf = await startPostfix({ ...cert, protocols: '>=TLSv1.2' });
  });
  after(async () => {
    await pf?.stop();
  });

  function deps(policy: PolicyEntrySpec, ca: string[]): DeliveryDeps {
    return {
      dns: createDnsClient({}),
      policy: new PolicyTable({ default: { level: 'none' }, domains: { [POSTFIX_TEST_DOMAIN]: policy } }),
      routes: { [POSTFIX_TEST_DOMAIN]: `${MX}:${pf.port}` },
      heloName: 'postern.client.test',
      ca,
      now: () => new Date(),
      connectOverride: (h) => (h === MX ? { address: pf.host, port: pf.port } : null),
      timeouts: { greetingMs: 20_000, tlsMs: 20_000 },
    };
  }

  for (const [name, policy] of [
    ['encrypt', { level: 'encrypt' }],
    ['verify with its certificate as CA', { level: 'verify' }],
    ['verify + ncsc-nl', { level: 'verify', profile: 'ncsc-nl' }],
  ] as Array<[string, PolicyEntrySpec]>) {
    it(`${name}: the message arrives intact`, async () => {
      const tag = `postern-${randomUUID()}`;
      const b = body(tag);
      const [st] = await deliverMessage(
        queuedMessage(tag, [`bob@${POSTFIX_TEST_DOMAIN}`], b),
        b,
        deps(policy, [cert.certPem]),
      );
      assert.equal(st?.state, 'delivered', `${st?.reason ?? ''} ${await pf.logs()}`);
      assert.match(st?.reason ?? '', /over TLS 1\.[23]/);
      const file = await waitForMail(pf.maildir, tag);
      // Maildir stores LF line ends; Postfix prepends Return-Path/Delivered-To/Received.
      const expected = Buffer.from(b.toString('latin1').replace(/\r\n/g, '\n'), 'latin1');
      assert.deepEqual(file.subarray(file.length - expected.length), expected);
      // Postfix's smtpd_tls_received_header records the hop's TLS.
      assert.match(file.toString('latin1'), /\(using TLSv1\.[23] with cipher /);
    });
  }

  it('verify with a CA that did not issue its certificate defers and delivers nothing', async () => {
    const other = await makeSelfSignedCert({ dnsNames: [MX] });
    const tag = `postern-${randomUUID()}`;
    const b = body(tag);
    const [st] = await deliverMessage(
      queuedMessage(tag, [`bob@${POSTFIX_TEST_DOMAIN}`], b),
      b,
      deps({ level: 'verify' }, [other.certPem]),
    );
    assert.equal(st?.state, 'deferred');
    assert.match(st?.reason ?? '', /not trusted/);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(await countMail(pf.maildir, tag), 0);
  });
});
