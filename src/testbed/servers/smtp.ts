/**
 * Minimal SMTP server for the testbed (RFC 5321 + STARTTLS, RFC 3207). Accepts and discards
 * mail, counting messages and keeping the last one in memory for tests.
 */
import { createLineServer, multiline } from './common.ts';
import type { DialectHandler, DialectServerOptions, LineConnection, LineServer } from './common.ts';

/** The line the response-injection server appends, in plaintext, after "220 Ready to start TLS". */
export const FORGED_SMTP_REPLY = '250 2.0.0 forged by postern testbed (response injection)\r\n';

export interface ReceivedMessage {
  from: string;
  to: string[];
  data: Buffer;
  /** Whether it arrived over TLS. */
  tls: boolean;
}

export interface SmtpServerOptions extends DialectServerOptions {
  /** Advertised SIZE and enforced limit (default 10 MiB). */
  maxMessageSize?: number;
  /** Recipients per transaction (default 100, the RFC 5321 §4.5.3.1.8 minimum). */
  maxRecipients?: number;
}

export interface SmtpTestServer extends LineServer {
  /** Messages accepted since start. */
  readonly messageCount: number;
  readonly lastMessage: ReceivedMessage | undefined;
}

const MAX_ERRORS = 20;

/** Creates an SMTP server; call listen() to bind it. */
export function createSmtpServer(options: SmtpServerOptions): SmtpTestServer {
  const state = { messageCount: 0, lastMessage: undefined as ReceivedMessage | undefined };
  const base = createLineServer(options, (conn) =>
    smtpSession(conn, options, (m) => {
      state.messageCount++;
      state.lastMessage = m;
      return state.messageCount;
    }),
  );
  return {
    get stats() {
      return base.stats;
    },
    listen: (port, address) => base.listen(port, address),
    close: () => base.close(),
    get messageCount() {
      return state.messageCount;
    },
    get lastMessage() {
      return state.lastMessage;
    },
  };
}

function smtpSession(
  conn: LineConnection,
  options: SmtpServerOptions,
  deliver: (m: ReceivedMessage) => number,
): DialectHandler {
  const host = options.hostname;
  const maxSize = options.maxMessageSize ?? 10 * 1024 * 1024;
  const maxRcpt = options.maxRecipients ?? 100;
  let helo: string | null = null;
  let from: string | null = null;
  let rcpts: string[] = [];
  let inData = false;
  let chunks: Buffer[] = [];
  let size = 0;
  let tooBig = false;
  let midLine = false;

  const reply = (text: string): void => conn.write(`${text}\r\n`);
  const resetTransaction = (): void => {
    from = null;
    rcpts = [];
    chunks = [];
    size = 0;
    tooBig = false;
    midLine = false;
  };
  const error = (text: string): void => {
    conn.errors++;
    if (conn.errors >= MAX_ERRORS) {
      conn.end(`421 4.7.0 ${host} Error: too many errors\r\n`);
      return;
    }
    reply(text);
  };
  const advertiseStarttls = (): boolean =>
    options.mode === 'starttls' &&
    !conn.tlsActive &&
    (conn.switches.starttls === 'offer' || conn.switches.starttls === 'refuse-454');

  const append = (b: Buffer): void => {
    size += b.length;
    if (size > maxSize) tooBig = true;
    // Past the limit keep reading (the client cannot be stopped mid-DATA) but stop storing.
    if (!tooBig) chunks.push(Buffer.from(b));
  };

  const dataLine = (line: Buffer, partial: boolean): void => {
    if (!midLine && !partial && line.length === 1 && line[0] === 0x2e) {
      inData = false;
      conn.splitLongLines = false;
      if (tooBig) {
        reply('552 5.3.4 Error: message file too big');
      } else {
        const id = deliver({ from: from ?? '', to: rcpts, data: Buffer.concat(chunks), tls: conn.tlsActive });
        reply(`250 2.0.0 Ok: queued as ${id}`);
      }
      resetTransaction();
      return;
    }
    // RFC 5321 §4.5.2: remove one leading dot from a line.
    append(!midLine && line[0] === 0x2e ? line.subarray(1) : line);
    if (!partial) append(Buffer.from('\r\n'));
    midLine = partial;
  };

  const commands: Record<string, (arg: string) => void> = {
    EHLO(arg) {
      if (arg === '') return error('501 5.5.4 Syntax: EHLO hostname');
      helo = arg;
      resetTransaction();
      const ext = [host, 'PIPELINING', `SIZE ${maxSize}`, '8BITMIME', 'ENHANCEDSTATUSCODES'];
      if (advertiseStarttls()) ext.push('STARTTLS');
      conn.write(multiline('250', ext));
    },
    HELO(arg) {
      if (arg === '') return error('501 5.5.4 Syntax: HELO hostname');
      helo = arg;
      resetTransaction();
      reply(`250 ${host}`);
    },
    NOOP() {
      reply('250 2.0.0 Ok');
    },
    RSET() {
      resetTransaction();
      reply('250 2.0.0 Ok');
    },
    QUIT() {
      conn.end('221 2.0.0 Bye\r\n');
    },
    HELP() {
      reply('214 2.0.0 postern testbed: see RFC 5321');
    },
    STARTTLS(arg) {
      if (conn.tlsActive) return error('503 5.5.1 Error: TLS already active');
      const sw = conn.switches.starttls;
      if (options.mode === 'implicit' || sw === 'none') return error('502 5.5.1 Error: command not implemented');
      if (arg !== '') return error('501 5.5.4 Syntax: STARTTLS');
      if (sw === 'refuse-454') return reply('454 4.7.0 TLS not available due to local problem');
      conn.startTls('220 2.0.0 Ready to start TLS\r\n', FORGED_SMTP_REPLY);
    },
    MAIL(arg) {
      if (helo === null) return error('503 5.5.1 Error: send HELO/EHLO first');
      if (from !== null) return error('503 5.5.1 Error: nested MAIL command');
      const m = /^FROM:\s*<([^<>]*)>(.*)$/i.exec(arg);
      if (m === null) return error('501 5.5.4 Syntax: MAIL FROM:<address>');
      const sizeParam = /(?:^|\s)SIZE=(\d+)/i.exec(m[2] ?? '');
      if (sizeParam !== null && Number(sizeParam[1]) > maxSize) {
        return reply('552 5.3.4 Message size exceeds fixed limit');
      }
      from = m[1] ?? '';
      reply('250 2.1.0 Ok');
    },
    RCPT(arg) {
      if (from === null) return error('503 5.5.1 Error: need MAIL command');
      const m = /^TO:\s*<([^<>]+)>/i.exec(arg);
      if (m === null) return error('501 5.5.4 Syntax: RCPT TO:<address>');
      if (rcpts.length >= maxRcpt) return reply('452 4.5.3 Error: too many recipients');
      rcpts.push(m[1] ?? '');
      reply('250 2.1.5 Ok');
    },
    DATA(arg) {
      if (arg !== '') return error('501 5.5.4 Syntax: DATA');
      if (from === null) return error('503 5.5.1 Error: need MAIL command');
      if (rcpts.length === 0) return error('554 5.5.1 Error: no valid recipients');
      inData = true;
      conn.splitLongLines = true;
      reply('354 End data with <CR><LF>.<CR><LF>');
    },
  };
  for (const verb of ['VRFY', 'EXPN', 'AUTH', 'BDAT', 'ETRN', 'TURN']) {
    commands[verb] = () => error('502 5.5.1 Error: command not implemented');
  }

  return {
    greet() {
      reply(`220 ${host} ESMTP postern testbed`);
    },
    line(line, partial) {
      if (inData) return dataLine(line, partial);
      const text = line.toString('latin1');
      const sp = text.indexOf(' ');
      const verb = (sp === -1 ? text : text.slice(0, sp)).toUpperCase();
      const arg = sp === -1 ? '' : text.slice(sp + 1).trim();
      const handler = Object.hasOwn(commands, verb) ? commands[verb] : undefined;
      if (handler === undefined) return error('500 5.5.2 Error: command not recognized');
      handler(arg);
    },
    overflow() {
      error('500 5.5.2 Error: line too long');
    },
    timeout() {
      reply(`421 4.4.2 ${host} Error: timeout exceeded`);
    },
    tlsStarted() {
      // RFC 3207 §4.2: discard all knowledge obtained from the client; the client must EHLO again.
      helo = null;
      inData = false;
      conn.splitLongLines = false;
      resetTransaction();
    },
  };
}
