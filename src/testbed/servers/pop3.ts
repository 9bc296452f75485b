/**
 * Minimal POP3 server for the testbed (RFC 1939 AUTHORIZATION state, CAPA per RFC 2449, STLS per
 * RFC 2595): CAPA, STLS, NOOP, QUIT, USER/PASS (always -ERR at PASS).
 */
import { createLineServer } from './common.ts';
import type { DialectHandler, DialectServerOptions, LineConnection, LineServer } from './common.ts';

/** The line the response-injection server appends, in plaintext, after "+OK Begin TLS". */
export const FORGED_POP3_RESPONSE = '+OK forged by postern testbed (response injection)\r\n';

const MAX_ERRORS = 20;

/** Creates a POP3 server; call listen() to bind it. */
export function createPop3Server(options: DialectServerOptions): LineServer {
  return createLineServer(options, (conn) => pop3Session(conn, options));
}

function pop3Session(conn: LineConnection, options: DialectServerOptions): DialectHandler {
  const host = options.hostname;
  let user: string | null = null;
  const sw = (): string => conn.switches.starttls;
  const advertiseStls = (): boolean =>
    options.mode === 'starttls' && !conn.tlsActive && (sw() === 'offer' || sw() === 'refuse-454');
  const send = (text: string): void => conn.write(`${text}\r\n`);
  const err = (text: string): void => {
    conn.errors++;
    if (conn.errors >= MAX_ERRORS) {
      conn.end('-ERR Too many errors\r\n');
      return;
    }
    send(text);
  };

  const commands: Record<string, (arg: string) => void> = {
    CAPA() {
      const caps = ['USER', ...(advertiseStls() ? ['STLS'] : []), 'IMPLEMENTATION postern-testbed'];
      // RFC 2449 §5: a multi-line response, terminated by a lone dot.
      conn.write(`+OK Capability list follows\r\n${caps.join('\r\n')}\r\n.\r\n`);
    },
    STLS() {
      if (conn.tlsActive) return err('-ERR Command not permitted when TLS active');
      if (options.mode === 'implicit' || sw() === 'none') return err('-ERR Unknown command');
      if (sw() === 'refuse-454') return send('-ERR [SYS/TEMP] TLS not available');
      conn.startTls('+OK Begin TLS negotiation\r\n', FORGED_POP3_RESPONSE);
    },
    NOOP() {
      send('+OK');
    },
    QUIT() {
      conn.end(`+OK ${host} signing off\r\n`);
    },
    USER(arg) {
      if (arg === '') return err('-ERR Syntax: USER name');
      user = arg;
      send('+OK');
    },
    PASS() {
      if (user === null) return err('-ERR USER first');
      user = null;
      send('-ERR [AUTH] Authentication failed');
    },
  };

  return {
    greet() {
      send(`+OK ${host} POP3 postern testbed ready`);
    },
    line(line) {
      const text = line.toString('latin1');
      const sp = text.indexOf(' ');
      const verb = (sp === -1 ? text : text.slice(0, sp)).toUpperCase();
      const arg = sp === -1 ? '' : text.slice(sp + 1).trim();
      const handler = Object.hasOwn(commands, verb) ? commands[verb] : undefined;
      if (handler === undefined) return err('-ERR Unknown command');
      handler(arg);
    },
    overflow() {
      err('-ERR Line too long');
    },
    timeout() {
      send('-ERR [SYS/TEMP] idle timeout, closing');
    },
    tlsStarted() {
      // RFC 2595 §4: forget plaintext state; the client re-issues CAPA.
      user = null;
    },
  };
}
