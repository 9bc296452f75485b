/**
 * Typed outbound errors: the SMTP code and enhanced status (RFC 3463) they stand for, and whether
 * the failure is temporary. Temporary vs permanent is decided where the error is made, once.
 */
import { PosternError } from '../../core/errors.ts';

export type SmtpClientErrorCode =
  | 'net-connect'
  | 'net-timeout'
  | 'net-closed'
  | 'smtp-greeting'
  | 'smtp-reply'
  | 'smtp-protocol'
  | 'starttls-refused'
  | 'tls-handshake-failed'
  | 'smtputf8-unsupported'
  | 'requiretls-unavailable'
  | 'message-too-big'
  | 'body-unsupported';

/** Where in the session a failure happened. */
export type SmtpStage =
  'connect' | 'greeting' | 'ehlo' | 'starttls' | 'tls' | 'mail' | 'rcpt' | 'data' | 'rset' | 'quit';

export class SmtpClientError extends PosternError {
  declare readonly code: SmtpClientErrorCode;
  /** Reply code from the server, or the code postern reports for a local decision (e.g. 550 for 5.7.30). */
  readonly smtpCode: number | null;
  /** RFC 3463 enhanced status, e.g. '5.6.7'. */
  readonly enhanced: string | null;
  readonly temporary: boolean;
  /** The server's reply (one line, escaped), when there was one. */
  readonly reply: string | null;
  readonly stage: SmtpStage;
  constructor(
    code: SmtpClientErrorCode,
    message: string,
    o: {
      stage: SmtpStage;
      temporary: boolean;
      smtpCode?: number | null;
      enhanced?: string | null;
      reply?: string | null;
      cause?: unknown;
    },
  ) {
    super(code, message, o.cause === undefined ? {} : { cause: o.cause });
    this.name = 'SmtpClientError';
    this.smtpCode = o.smtpCode ?? null;
    this.enhanced = o.enhanced ?? null;
    this.temporary = o.temporary;
    this.reply = o.reply ?? null;
    this.stage = o.stage;
  }
}
