/**
 * The scriptable SMTP sink for tests: by default it accepts every message and keeps all of them
 * (the testbed servers keep only the last), optionally offering STARTTLS (RFC 3207); a `script`
 * answers any command (or the end of DATA) differently — a 550 for one recipient, a 451 after the
 * message, a missing extension — so one sink serves every test of postern's SMTP client. A test
 * peer of the client, not a mock of it: it speaks the protocol over real sockets.
 */
import { createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import { TLSSocket, createSecureContext } from 'node:tls';

export interface SinkMessage {
  from: string;
  to: string[];
  /** The message as received: dot-unstuffed, CRLF line ends, without the final ".". */
  data: Buffer;
  tls: boolean;
}

/** What a script sees: the command line (or `'.'` at the end of DATA) and the transaction so far. */
export interface SinkCommand {
  /** Upper-case verb (`EHLO`, `MAIL`, …), or `'.'` when a message has just been received. */
  verb: string;
  /** The line as received (latin1), without CRLF; `'.'` at the end of DATA. */
  line: string;
  from: string | null;
  to: readonly string[];
  tls: boolean;
  /** At the end of DATA: the message (as `SinkMessage.data`). */
  data?: Buffer;
}

export interface SmtpSink {
  port: number;
  messages: SinkMessage[];
  /** Connections accepted so far. */
  connections: number;
  /** QUIT commands received so far. */
  quits: number;
  /** Every command line received, in order (latin1, without CRLF), across connections. */
  commands: string[];
  /** Called for each accepted message (after it is recorded). */
  onMessage: ((m: SinkMessage) => void) | null;
  close(): Promise<void>;
}

export interface SmtpSinkOptions {
  /** Offer STARTTLS with this certificate and key (PEM). */
  tls?: { cert: string; key: string };
  hostname?: string;
  /** EHLO extensions (default PIPELINING, SIZE, 8BITMIME, SMTPUTF8, ENHANCEDSTATUSCODES; STARTTLS is added when `tls` is given). */
  extensions?: string[];
  /**
   * Answers a command instead of the sink: return the full reply (with CRLF) to send it and skip
   * the sink's own handling (a refused RCPT adds no recipient; a refused end of DATA records no
   * message), or null to let the sink answer as usual.
   */
  script?: (c: SinkCommand) => string | null;
}

const MAX_LINE = 1_000_000;

/** Starts a sink on 127.0.0.1 (ephemeral port). */
export async function startSmtpSink(o: SmtpSinkOptions = {}): Promise<SmtpSink> {
  const host = o.hostname ?? 'sink.postern.test';
  const ctx = o.tls ? createSecureContext({ cert: o.tls.cert, key: o.tls.key }) : null;
  const sockets = new Set<Socket>();
  const sink: SmtpSink = {
    port: 0,
    messages: [],
    connections: 0,
    quits: 0,
    commands: [],
    onMessage: null,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };

  const session = (raw: Socket): void => {
    sockets.add(raw);
    sink.connections++;
    raw.on('close', () => sockets.delete(raw));
    let sock: Socket = raw;
    let buf: Buffer = Buffer.alloc(0);
    let inData = false;
    let chunks: Buffer[] = [];
    let from: string | null = null;
    let rcpts: string[] = [];
    let tls = false;
    const write = (s: string): void => {
      if (!sock.destroyed) sock.write(s);
    };

    const onLine = (line: Buffer): boolean => {
      if (inData) {
        if (line.length === 1 && line[0] === 0x2e) {
          inData = false;
          const m: SinkMessage = { from: from ?? '', to: rcpts, data: Buffer.concat(chunks), tls };
          const scripted = o.script?.({ verb: '.', line: '.', from, to: rcpts, tls, data: m.data }) ?? null;
          if (scripted !== null) write(scripted);
          if (scripted === null || scripted.startsWith('2')) {
            sink.messages.push(m);
            sink.onMessage?.(m);
          }
          if (scripted === null) write(`250 2.0.0 Ok: queued as ${sink.messages.length}\r\n`);
          from = null;
          rcpts = [];
          chunks = [];
        } else {
          // RFC 5321 §4.5.2: remove one leading dot.
          chunks.push(line[0] === 0x2e ? line.subarray(1) : line, Buffer.from('\r\n'));
        }
        return true;
      }
      const text = line.toString('latin1');
      const verb = text.split(' ', 1)[0]?.toUpperCase() ?? '';
      sink.commands.push(text);
      if (verb === 'QUIT') sink.quits++;
      const scripted = o.script?.({ verb, line: text, from, to: rcpts, tls }) ?? null;
      if (scripted !== null) {
        write(scripted);
        return true;
      }
      switch (verb) {
        case 'EHLO': {
          const ext = [
            host,
            ...(o.extensions ?? ['PIPELINING', 'SIZE 50000000', '8BITMIME', 'SMTPUTF8', 'ENHANCEDSTATUSCODES']),
          ];
          if (ctx !== null && !tls) ext.push('STARTTLS');
          write(ext.map((e, i) => `250${i === ext.length - 1 ? ' ' : '-'}${e}\r\n`).join(''));
          from = null;
          rcpts = [];
          break;
        }
        case 'HELO':
          write(`250 ${host}\r\n`);
          break;
        case 'STARTTLS': {
          if (ctx === null || tls) {
            write('502 5.5.1 not implemented\r\n');
            break;
          }
          write('220 2.0.0 Ready to start TLS\r\n');
          // RFC 3207 §4.2: anything pipelined after STARTTLS is discarded.
          buf = Buffer.alloc(0);
          raw.removeListener('data', onData);
          const t = new TLSSocket(raw, { isServer: true, secureContext: ctx });
          t.on('error', () => raw.destroy());
          t.on('data', onData);
          sock = t;
          tls = true;
          from = null;
          rcpts = [];
          return false;
        }
        case 'MAIL': {
          const m = /^MAIL FROM:\s*<([^<>]*)>/i.exec(text);
          if (m === null) write('501 5.5.4 syntax\r\n');
          else {
            from = m[1] ?? '';
            rcpts = [];
            write('250 2.1.0 Ok\r\n');
          }
          break;
        }
        case 'RCPT': {
          const m = /^RCPT TO:\s*<([^<>]+)>/i.exec(text);
          if (m === null || from === null) write('503 5.5.1 need MAIL\r\n');
          else {
            rcpts.push(m[1] ?? '');
            write('250 2.1.5 Ok\r\n');
          }
          break;
        }
        case 'DATA':
          if (from === null || rcpts.length === 0) write('554 5.5.1 no valid recipients\r\n');
          else {
            inData = true;
            chunks = [];
            write('354 End data with <CR><LF>.<CR><LF>\r\n');
          }
          break;
        case 'RSET':
          from = null;
          rcpts = [];
          write('250 2.0.0 Ok\r\n');
          break;
        case 'NOOP':
          write('250 2.0.0 Ok\r\n');
          break;
        case 'QUIT':
          sock.end('221 2.0.0 Bye\r\n');
          return false;
        default:
          write('500 5.5.2 command not recognized\r\n');
      }
      return true;
    };

    function onData(d: Buffer): void {
      buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
      for (;;) {
        const nl = buf.indexOf('\r\n');
        if (nl === -1) {
          if (buf.length > MAX_LINE) sock.destroy();
          return;
        }
        const line = buf.subarray(0, nl);
        buf = buf.subarray(nl + 2);
        if (!onLine(line)) return;
      }
    }

    raw.on('data', onData);
    raw.on('error', () => undefined);
    write(`220 ${host} ESMTP test sink\r\n`);
  };

  const server: Server = createServer(session);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  sink.port = (server.address() as AddressInfo).port;
  return sink;
}
