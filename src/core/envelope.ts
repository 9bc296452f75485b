/**
 * The envelope of a message as smtpd received it: reverse path, recipients with their RFC 3461
 * DSN parameters, MAIL FROM parameters and how it arrived. smtp (server and client), queue and
 * delivery all speak it, so it lives in core; the queue's own records (RecipientStatus,
 * QueuedMessage, Spool) stay in src/queue/types.ts.
 */

/** RFC 3461 DSN parameters of one recipient. */
export interface RecipientDsn {
  /** NOTIFY=NEVER | SUCCESS,FAILURE,DELAY; null = not given (default: FAILURE,DELAY). */
  notify: Array<'SUCCESS' | 'FAILURE' | 'DELAY'> | 'NEVER' | null;
  /** ORCPT, as given (e.g. "rfc822;user@example.org"), xtext-decoded. */
  orcpt: string | null;
}

export interface EnvelopeRecipient {
  address: string;
  dsn: RecipientDsn;
}

/** What smtpd learned about the message's arrival. */
export interface ArrivalInfo {
  /** Listener name from config (e.g. 'mx', 'submission'). */
  listener: string;
  clientAddress: string;
  clientHelo: string | null;
  /** SASL user when authenticated. */
  authUser: string | null;
  tls: { protocol: string; cipher: string; bits: number | null; clientCertSubject: string | null } | null;
  receivedAt: string; // ISO 8601
}

export interface Envelope {
  /** Reverse path; '' for the null sender (bounces). */
  mailFrom: string;
  recipients: EnvelopeRecipient[];
  /** MAIL FROM parameters that travel with the message. */
  size: number | null;
  body: '7BIT' | '8BITMIME' | 'BINARYMIME';
  smtputf8: boolean;
  /** RFC 8689 REQUIRETLS given on MAIL FROM. */
  requireTls: boolean;
  /** RFC 3461 RET and ENVID. */
  dsnRet: 'FULL' | 'HDRS' | null;
  dsnEnvid: string | null;
  arrival: ArrivalInfo;
}
