/**
 * A minimal SMTP sink with STARTTLS, for bench/mta-relay.ts: Debian's smtp-sink(1) offers no TLS,
 * so the "TLS on the outbound hop" runs send both MTAs here instead. It accepts everything, throws
 * the message away and prints `mesg=N` after every message (the same counter format as
 * `smtp-sink -c`, so one parser reads both). Commands may be pipelined; replies to one read are
 * written at once. Not a conforming server: a load generator's counterpart.
 *
 *   node bench/tls-sink.ts --cert cert.pem --key key.pem [--port 0]
 *
 * Prints `port=N` once listening (127.0.0.1 only).
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { Socket } from 'node:net';
import { TLSSocket, createSecureContext } from 'node:tls';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    cert: { type: 'string' },
    key: { type: 'string' },
    port: { type: 'string', default: '0' },
  },
});
if (values.cert === undefined || values.key === undefined) {
  process.stderr.write('usage: node bench/tls-sink.ts --cert FILE --key FILE [--port N]\n');
  process.exit(2);
}
const ctx = createSecureContext({ cert: readFileSync(values.cert), key: readFileSync(values.key) });
const END_OF_DATA = Buffer.from('\r\n.\r\n');
let messages = 0;

function session(raw: Socket): void {
  let sock: Socket = raw;
  let tls = false;
  let buf: Buffer = Buffer.alloc(0);
  let inData = false;
  const onData = (chunk: Buffer): void => {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    const out: string[] = [];
    for (;;) {
      if (inData) {
        const at = buf.indexOf(END_OF_DATA);
        if (at === -1) {
          // Keep only what could still be the start of the terminator.
          if (buf.length > 4) buf = buf.subarray(buf.length - 4);
          break;
        }
        buf = buf.subarray(at + END_OF_DATA.length);
        inData = false;
        messages++;
        process.stdout.write(`mesg=${messages}\n`);
        out.push('250 2.0.0 Ok: queued\r\n');
        continue;
      }
      const nl = buf.indexOf(10);
      if (nl === -1) break;
      const line = buf.subarray(0, nl).toString('latin1').replace(/\r$/, '');
      buf = buf.subarray(nl + 1);
      const verb = line.slice(0, 4).toUpperCase();
      if (verb === 'EHLO') {
        out.push(
          `250-sink\r\n250-PIPELINING\r\n250-SIZE 100000000\r\n250-8BITMIME\r\n${tls ? '' : '250-STARTTLS\r\n'}250 ENHANCEDSTATUSCODES\r\n`,
        );
      } else if (verb === 'DATA') {
        out.push('354 End data with <CR><LF>.<CR><LF>\r\n');
        inData = true;
        // A body that begins right away with the terminator line (empty message).
        buf = Buffer.concat([Buffer.from('\r\n'), buf]);
      } else if (verb === 'STAR' && !tls) {
        raw.write(out.join('') + '220 2.0.0 Ready to start TLS\r\n');
        out.length = 0;
        // RFC 3207 §4.2: anything pipelined after STARTTLS is discarded.
        raw.removeListener('data', onData);
        buf = Buffer.alloc(0);
        const t = new TLSSocket(raw, { isServer: true, secureContext: ctx });
        t.on('data', onData);
        t.on('error', () => t.destroy());
        sock = t;
        tls = true;
        return;
      } else if (verb === 'QUIT') {
        out.push('221 2.0.0 Bye\r\n');
        sock.end(out.join(''));
        return;
      } else {
        out.push('250 2.0.0 Ok\r\n');
      }
    }
    if (out.length > 0) sock.write(out.join(''));
  };
  raw.on('data', onData);
  raw.on('error', () => raw.destroy());
  raw.write('220 sink ESMTP\r\n');
}

const server = createServer({ noDelay: true }, session);
server.listen({ host: '127.0.0.1', port: Number(values.port), backlog: 1024 }, () => {
  const a = server.address();
  process.stdout.write(`port=${typeof a === 'object' && a !== null ? a.port : 0}\n`);
});
process.on('SIGTERM', () => process.exit(0));
