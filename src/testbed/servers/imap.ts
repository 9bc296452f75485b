/**
 * Minimal IMAP server for the testbed (RFC 3501 not-authenticated state, STARTTLS per RFC 2595):
 * CAPABILITY, NOOP, LOGOUT, STARTTLS, LOGIN (always NO).
 */
import { createLineServer } from './common.ts';
import type { DialectHandler, DialectServerOptions, LineConnection, LineServer } from './common.ts';

/** The untagged line the response-injection server appends, in plaintext, after "OK Begin TLS". */
export const FORGED_IMAP_RESPONSE = '* CAPABILITY IMAP4rev1 AUTH=PLAIN X-POSTERN-FORGED\r\n';

const MAX_ERRORS = 20;

/** Creates an IMAP server; call listen() to bind it. */
export function createImapServer(options: DialectServerOptions): LineServer {
  return createLineServer(options, (conn) => imapSession(conn, options));
}

function imapSession(conn: LineConnection, options: DialectServerOptions): DialectHandler {
  const host = options.hostname;
  const sw = (): string => conn.switches.starttls;
  const advertiseStarttls = (): boolean =>
    options.mode === 'starttls' && !conn.tlsActive && (sw() === 'offer' || sw() === 'refuse-454');
  // RFC 3501 §6.2.3 / RFC 2595 §3.2: refuse plaintext LOGIN while TLS is available but not active.
  // A server that has no STARTTLS at all ('none') behaves like a plaintext-only server instead.
  const loginDisabled = (): boolean => options.mode === 'starttls' && !conn.tlsActive && sw() !== 'none';
  const capabilities = (): string =>
    ['IMAP4rev1', ...(advertiseStarttls() ? ['STARTTLS'] : []), ...(loginDisabled() ? ['LOGINDISABLED'] : [])].join(
      ' ',
    );
  const send = (text: string): void => conn.write(`${text}\r\n`);
  const bad = (text: string): void => {
    conn.errors++;
    if (conn.errors >= MAX_ERRORS) {
      conn.end('* BYE Too many errors\r\n');
      return;
    }
    send(text);
  };

  const commands: Record<string, (tag: string, args: string) => void> = {
    CAPABILITY(tag) {
      send(`* CAPABILITY ${capabilities()}`);
      send(`${tag} OK CAPABILITY completed`);
    },
    NOOP(tag) {
      send(`${tag} OK NOOP completed`);
    },
    LOGOUT(tag) {
      send(`* BYE ${host} logging out`);
      conn.end(`${tag} OK LOGOUT completed\r\n`);
    },
    STARTTLS(tag) {
      if (conn.tlsActive) return bad(`${tag} BAD TLS already active`);
      if (options.mode === 'implicit' || sw() === 'none') return bad(`${tag} BAD Unknown command`);
      if (sw() === 'refuse-454') return send(`${tag} NO [UNAVAILABLE] TLS not available`);
      conn.startTls(`${tag} OK Begin TLS negotiation now\r\n`, FORGED_IMAP_RESPONSE);
    },
    LOGIN(tag) {
      if (loginDisabled()) return send(`${tag} NO [PRIVACYREQUIRED] LOGIN disabled, use STARTTLS first`);
      send(`${tag} NO [AUTHENTICATIONFAILED] Authentication failed`);
    },
    AUTHENTICATE(tag) {
      send(`${tag} NO [AUTHENTICATIONFAILED] Authentication failed`);
    },
  };

  return {
    greet() {
      send(`* OK [CAPABILITY ${capabilities()}] ${host} IMAP4rev1 postern testbed ready`);
    },
    line(line) {
      // RFC 3501 §9: tag = 1*<any ASTRING-CHAR except "+">.
      const m = /^([^\s(){%*"\\\]+]+) ([A-Za-z]+)(?: (.*))?$/.exec(line.toString('latin1'));
      if (m === null) return bad('* BAD Invalid tag or command');
      const tag = m[1] ?? '*';
      const verb = (m[2] ?? '').toUpperCase();
      const handler = Object.hasOwn(commands, verb) ? commands[verb] : undefined;
      if (handler === undefined) return bad(`${tag} BAD Command unrecognized or not valid in this state`);
      handler(tag, m[3] ?? '');
    },
    overflow() {
      bad('* BAD Line too long');
    },
    timeout() {
      send('* BYE Autologout; idle for too long');
    },
    tlsStarted() {
      // RFC 2595 §3.1: the client must re-issue CAPABILITY; no state to forget before login.
    },
  };
}
