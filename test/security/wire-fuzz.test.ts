// Attack: a hostile or broken server (or client, for the testbed) sends malformed TLS bytes to crash,
// hang or exhaust the memory of the hand-written codec. Every input must give a flight, null, or a
// WireError — nothing else — within bounded time and memory. Seeded: set POSTERN_FUZZ_SEED to replay.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { WireError } from '../../src/core/errors.ts';
import { ServerFlightParser } from '../../src/tls/wire/server-flight.ts';
import { buildClientHello, buildSslv2ClientHello } from '../../src/tls/wire/client-hello.ts';
import {
  buildAlert,
  buildCertificate,
  buildServerHello,
  buildServerHelloDone,
  buildServerKeyExchange,
  buildSslv2Error,
  buildSslv2ServerHello,
  clientHelloLength,
  parseClientHello,
} from '../../src/tls/wire/server-side.ts';
import { HRR_RANDOM } from '../../src/tls/wire/constants.ts';
import { prng } from '../helpers/prng.ts';

const SEED = Number(process.env.POSTERN_FUZZ_SEED ?? 0x5eed1234) >>> 0;
const ITERATIONS = 20_000;
const MAX_BYTES = 64 * 1024;

const rand = prng(SEED);
const int = (n: number): number => Math.floor(rand() * n);
const bytes = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => int(256)));

/** Splits a TLS byte stream into records by their headers (best effort; used for reordering). */
function records(b: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let off = 0;
  while (off + 5 <= b.length) {
    const len = b.readUInt16BE(off + 3);
    out.push(b.subarray(off, Math.min(b.length, off + 5 + len)));
    off += 5 + len;
  }
  if (off < b.length) out.push(b.subarray(off));
  return out;
}

/** Re-frames a handshake payload into records of random sizes. */
function refragment(b: Buffer): Buffer {
  const payload = Buffer.concat(records(b).map((r) => (r[0] === 22 ? r.subarray(5) : Buffer.alloc(0))));
  const out: Buffer[] = [];
  for (let off = 0; off < payload.length;) {
    const n = 1 + int(64);
    const frag = payload.subarray(off, off + n);
    out.push(Buffer.from([22, 3, 3, frag.length >> 8, frag.length & 0xff]), frag);
    off += n;
  }
  return Buffer.concat(out);
}

const DER = Buffer.concat([Buffer.from([0x30, 0x82, 0x01, 0x00]), bytes(256)]);

function serverCorpus(): Buffer[] {
  const sh12 = buildServerHello({
    version: 'TLSv1.2',
    cipherSuite: 0xc02f,
    extensions: [
      { type: 0xff01, data: Buffer.from([0]) },
      { type: 23, data: Buffer.alloc(0) },
      { type: 16, data: Buffer.from('000504736d7470', 'hex') },
      { type: 11, data: Buffer.from([1, 0]) },
    ],
  });
  const tls12 = Buffer.concat([
    sh12,
    buildCertificate([DER, DER]),
    Buffer.from('16030300 0b16000007010000033001 00'.replace(/\s/g, ''), 'hex'),
    buildServerKeyExchange({ kind: 'ecdhe', group: 23 }, { version: 'TLSv1.2' }),
    Buffer.from('16030300080d00000401010000', 'hex').subarray(0, 13),
    buildServerHelloDone(),
  ]);
  const dhe = Buffer.concat([
    buildServerHello({ version: 'TLSv1.2', cipherSuite: 0x009e }),
    buildCertificate([DER]),
    buildServerKeyExchange({ kind: 'dhe', prime: bytes(128), generator: Buffer.from([2]) }, { version: 'TLSv1.2' }),
    buildServerHelloDone(),
  ]);
  const exp = Buffer.concat([
    buildServerHello({ version: 'TLSv1.0', cipherSuite: 0x0003 }),
    buildCertificate([DER], 0x0301),
    buildServerKeyExchange({ kind: 'rsa-export', modulus: bytes(64) }, { version: 'TLSv1.0' }),
    buildServerHelloDone(0x0301),
  ]);
  const tls13 = Buffer.concat([
    buildServerHello({
      version: 'TLSv1.3',
      cipherSuite: 0x1301,
      sessionId: bytes(32),
      extensions: [{ type: 51, data: Buffer.concat([Buffer.from([0, 29, 0, 32]), bytes(32)]) }],
    }),
    Buffer.from('140303000101', 'hex'),
    Buffer.concat([Buffer.from('1703030020', 'hex'), bytes(32)]),
  ]);
  const hrr = buildServerHello({
    version: 'TLSv1.3',
    cipherSuite: 0x1302,
    random: HRR_RANDOM,
    extensions: [{ type: 51, data: Buffer.from([0, 24]) }],
  });
  const sslv2 = buildSslv2ServerHello({ certificate: DER, cipherKinds: [0x010080, 0x0700c0] });
  const sslv2three = Buffer.concat([Buffer.from([sslv2[0]! & 0x3f, sslv2[1]!, 0]), sslv2.subarray(2)]);
  return [
    tls12,
    refragment(tls12),
    dhe,
    exp,
    tls13,
    hrr,
    Buffer.concat([buildAlert(1, 112, 0x0301), tls12]),
    buildAlert(2, 40),
    sslv2,
    sslv2three,
    buildSslv2Error(1),
    Buffer.from('220 mx.example.org ESMTP\r\n'),
  ];
}

function clientCorpus(): Buffer[] {
  return [
    buildClientHello({ version: 'TLSv1.2', suites: [0xc02f, 0x009c, 0x0005], serverName: 'a.example', alpn: ['smtp'] }),
    buildClientHello({ version: 'TLSv1.3', supportedVersions: ['TLSv1.2'], suites: [0x1301, 0xc02f], heartbeat: true }),
    buildClientHello({ version: 'SSLv3', suites: [0x0005, 0x000a] }),
    buildClientHello({ version: 'TLSv1.0', suites: [0x002f], padding: true, scsv: { fallback: true } }),
    buildClientHello({ version: 'TLSv1.2', suites: Array.from({ length: 8300 }, (_, i) => i) }),
    buildSslv2ClientHello({ ciphers: [0x010080, 0x00002f] }),
  ];
}

function writeLength(b: Buffer, off: number): void {
  const width = 1 + int(3);
  if (off + width > b.length) return;
  const choices = [0, 1, 0xff, 0xffff, 0xffffff, b.length - off, b.length - off + 1, int(1 << (8 * width))];
  const v = (choices[int(choices.length)] ?? 0) & ((1 << (8 * width)) - 1 || 0xffffff);
  b.writeUIntBE(v >>> 0, off, width);
}

/** One random mutation of a valid stream. */
function mutate(input: Buffer, corpus: Buffer[]): Buffer {
  let b = Buffer.from(input);
  const rounds = 1 + int(3);
  for (let r = 0; r < rounds && b.length > 0; r++) {
    switch (int(9)) {
      case 0: // bit flips
        for (let i = 0, n = 1 + int(8); i < n; i++) b[int(b.length)]! ^= 1 << int(8);
        break;
      case 1: // random byte values
        for (let i = 0, n = 1 + int(4); i < n; i++) b[int(b.length)] = int(256);
        break;
      case 2: // truncation
        b = b.subarray(0, int(b.length));
        break;
      case 3: // length-field corruption near a record or message header
        writeLength(b, int(Math.min(b.length, 64)) + (rand() < 0.5 ? 0 : int(b.length)));
        break;
      case 4: {
        // duplicated record
        const rs = records(b);
        const i = int(rs.length);
        rs.splice(i, 0, rs[i] ?? Buffer.alloc(0));
        b = Buffer.concat(rs);
        break;
      }
      case 5: {
        // reordered records
        const rs = records(b);
        for (let i = rs.length - 1; i > 0; i--) {
          const j = int(i + 1);
          [rs[i], rs[j]] = [rs[j]!, rs[i]!];
        }
        b = Buffer.concat(rs);
        break;
      }
      case 6: // inserted garbage
        {
          const at = int(b.length);
          b = Buffer.concat([b.subarray(0, at), bytes(1 + int(16)), b.subarray(at)]);
        }
        break;
      case 7: // splice with another corpus entry
        {
          const other = corpus[int(corpus.length)] ?? Buffer.alloc(0);
          b = Buffer.concat([b.subarray(0, int(b.length)), other.subarray(int(other.length))]);
        }
        break;
      default: // pure random tail
        b = Buffer.concat([b.subarray(0, int(b.length)), bytes(int(300))]);
    }
  }
  return b;
}

function fail(what: string, i: number, input: Buffer, e: unknown): never {
  assert.fail(
    `${what}: iteration ${i} (POSTERN_FUZZ_SEED=${SEED}) threw a non-WireError: ${String(e)}\ninput: ${input.subarray(0, 200).toString('hex')}`,
  );
}

describe(`wire codec fuzzing (seed ${SEED})`, () => {
  it(`ServerFlightParser survives ${ITERATIONS} mutated server streams in random chunks`, () => {
    const corpus = serverCorpus();
    const heapBefore = process.memoryUsage().heapUsed;
    const outcomes = { flight: 0, wireError: 0, incomplete: 0 };
    for (let i = 0; i < ITERATIONS; i++) {
      const base = corpus[int(corpus.length)] ?? Buffer.alloc(0);
      const input = rand() < 0.1 ? base : mutate(base, corpus);
      const parser = new ServerFlightParser({ maxBytes: MAX_BYTES, stopAfterServerHello: rand() < 0.1 });
      let done = false;
      try {
        for (let off = 0; off < input.length && !done;) {
          const n = rand() < 0.3 ? 1 : 1 + int(512);
          const r = parser.push(input.subarray(off, off + n));
          assert.ok(
            parser.bufferedBytes <= MAX_BYTES,
            `buffered ${parser.bufferedBytes} > cap (seed ${SEED}, iteration ${i})`,
          );
          off += n;
          if (r !== null) {
            done = true;
            outcomes.flight++;
          }
        }
        if (!done) {
          parser.partial();
          outcomes.incomplete++;
        }
      } catch (e) {
        if (e instanceof assert.AssertionError) throw e;
        // 'wire-internal' is the parser's own bug wrapped into a WireError: a failure here.
        if (!(e instanceof WireError) || e.code === 'wire-internal') fail('ServerFlightParser', i, input, e);
        outcomes.wireError++;
      }
    }
    // Each case must actually be exercised, not just survive.
    assert.ok(
      outcomes.flight > 1000 && outcomes.wireError > 1000 && outcomes.incomplete > 100,
      JSON.stringify(outcomes),
    );
    // No wall-clock bounds here (flaky on a loaded machine; speed belongs in bench/): a hang fails
    // by the runner's timeout, and the buffered-bytes cap asserted after every push is what bounds
    // the work one push can redo.
    assert.ok(process.memoryUsage().heapUsed - heapBefore < 256 * 1024 * 1024, 'heap grew unboundedly');
  });

  it('caps input that never completes a flight (endless HelloRequests, heartbeats, warnings)', () => {
    const endless = [
      Buffer.from('1603030004 00000000'.replace(/\s/g, ''), 'hex'),
      Buffer.from('1803030003 010000'.replace(/\s/g, ''), 'hex'),
      Buffer.from('1503030002 0170'.replace(/\s/g, ''), 'hex'),
    ];
    for (const unit of endless) {
      const parser = new ServerFlightParser({ maxBytes: MAX_BYTES });
      let threw: unknown;
      try {
        for (let i = 0; i < (MAX_BYTES / unit.length) * 2; i++) parser.push(unit);
      } catch (e) {
        threw = e;
      }
      assert.ok(threw instanceof WireError, `no WireError for ${unit.toString('hex')}`);
      assert.ok(['wire-too-large', 'wire-malformed'].includes(threw.code), threw.code);
      assert.ok(parser.bufferedBytes <= MAX_BYTES);
    }
  });

  it(`parseClientHello survives ${ITERATIONS} mutated client hellos`, () => {
    const corpus = clientCorpus();
    const outcomes = { parsed: 0, wireError: 0 };
    for (let i = 0; i < ITERATIONS; i++) {
      const base = corpus[int(corpus.length)] ?? Buffer.alloc(0);
      const input = rand() < 0.05 ? base : mutate(base, corpus);
      try {
        const len = clientHelloLength(input);
        assert.ok(len === null || (len > 0 && len <= input.length), `bad length ${len} (seed ${SEED}, iteration ${i})`);
        const info = parseClientHello(input);
        assert.ok(info.random.length === 32);
        outcomes.parsed++;
      } catch (e) {
        if (e instanceof assert.AssertionError) throw e;
        if (!(e instanceof WireError)) fail('parseClientHello', i, input, e);
        outcomes.wireError++;
      }
    }
    assert.ok(outcomes.parsed > 500 && outcomes.wireError > 1000, JSON.stringify(outcomes));
  });
});
