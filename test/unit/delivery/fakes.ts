/**
 * Fakes for the delivery pipeline's unit tests: a scripted `Connector` whose connections record
 * every command, DNS clients that answer from tables, and a recording event sink.
 */
import type { PosternEvent, EventSink } from '../../../src/core/events.ts';
import type { Connector, ConnectTo, DeliveryConnection, DeliveryDeps } from '../../../src/delivery/deliver.ts';
import type { DnssecAnswer, DnssecResolver, DnssecStatus, TlsaRecord } from '../../../src/dns/dnssec.ts';
import type { DnsClient, MxLookup, MxRecord } from '../../../src/dns/resolver.ts';
import { PolicyTable } from '../../../src/policy/table.ts';
import type { PolicyTableSpec } from '../../../src/policy/table.ts';
import { SmtpClientError } from '../../../src/smtp/client/errors.ts';
import type {
  OutboundTransaction,
  RecipientResult,
  StartTlsClientOptions,
  TransactionResult,
} from '../../../src/smtp/client/session.ts';
import type { NegotiatedSession } from '../../../src/tls/session.ts';

export function tlsSession(protocol = 'TLSv1.3'): NegotiatedSession {
  return {
    protocol,
    cipher: { name: 'TLS_AES_128_GCM_SHA256', standardName: 'TLS_AES_128_GCM_SHA256', version: protocol },
    group: 'x25519',
    ephemeralKeyBits: 253,
    peerChain: [],
    peerChainSource: 'issuer-walk',
    authorized: false,
    authorizationError: null,
    servername: null,
    alpn: null,
    sessionReused: false,
  };
}

/** How one scripted server behaves. */
export interface ServerScript {
  /** Connecting fails (refused). */
  down?: boolean;
  starttls?: boolean;
  /** What STARTTLS does: a session, refused (454) or a failed handshake. Default: TLS 1.3. */
  tls?: NegotiatedSession | 'refused' | 'handshake-fail';
  dsn?: boolean;
  /** RCPT reply per address ("250 2.1.5 ok" when absent). */
  rcpt?: Record<string, string>;
  /** DATA final reply (default "250 2.0.0 queued"). */
  data?: string;
  /** `send` throws this (before MAIL). */
  sendThrows?: SmtpClientError;
}

function reply(text: string): RecipientResult['reply'] {
  const code = Number(text.slice(0, 3));
  const m = /^\d{3} ([245]\.\d{1,3}\.\d{1,3})/.exec(text);
  return { code, enhanced: m?.[1] ?? null, text };
}

/** A scripted connector: `servers` by host name; `log` gets "host: COMMAND" lines. */
export class FakeConnector implements Connector {
  readonly log: string[] = [];
  readonly sent: Array<{ host: string; tx: OutboundTransaction }> = [];
  /** The options of every STARTTLS, in order. */
  readonly tlsOptions: StartTlsClientOptions[] = [];
  readonly servers: Record<string, ServerScript>;
  constructor(servers: Record<string, ServerScript>) {
    this.servers = servers;
  }

  async connect(to: ConnectTo): Promise<DeliveryConnection> {
    const s = this.servers[to.host] ?? {};
    this.log.push(`${to.host}: connect ${to.address}:${to.port}`);
    if (s.down === true)
      throw new SmtpClientError('net-connect', `connect to ${to.host} failed: ECONNREFUSED`, {
        stage: 'connect',
        temporary: true,
      });
    return new FakeConnection(this, to, s);
  }
}

class FakeConnection implements DeliveryConnection {
  tls: NegotiatedSession | null = null;
  transactions = 0;
  closed = false;
  readonly localAddress = '127.0.0.9';
  readonly ehloName: string;
  #ext: Set<string>;
  readonly c: FakeConnector;
  readonly to: ConnectTo;
  readonly s: ServerScript;
  constructor(c: FakeConnector, to: ConnectTo, s: ServerScript) {
    this.c = c;
    this.to = to;
    this.s = s;
    this.ehloName = to.host;
    this.#ext = new Set([...(s.starttls === true ? ['STARTTLS'] : []), ...(s.dsn === true ? ['DSN'] : [])]);
  }
  get host(): string {
    return this.to.host;
  }
  get usable(): boolean {
    return !this.closed;
  }
  get dsn(): boolean {
    return this.#ext.has('DSN');
  }
  offersStartTls(): boolean {
    return this.#ext.has('STARTTLS');
  }
  async startTls(opts: StartTlsClientOptions): Promise<NegotiatedSession> {
    this.c.log.push(`${this.host}: STARTTLS`);
    this.c.tlsOptions.push(opts);
    const t = this.s.tls ?? tlsSession();
    if (t === 'refused')
      throw new SmtpClientError('starttls-refused', `${this.host} refused STARTTLS: 454 4.7.0 no`, {
        stage: 'starttls',
        temporary: true,
        reply: '454 4.7.0 no',
      });
    if (t === 'handshake-fail') {
      this.closed = true;
      throw new SmtpClientError('tls-handshake-failed', 'alert 40', { stage: 'tls', temporary: true });
    }
    this.tls = t;
    return t;
  }
  async send(tx: OutboundTransaction): Promise<TransactionResult> {
    if (this.s.sendThrows !== undefined) throw this.s.sendThrows;
    this.transactions++;
    this.c.log.push(`${this.host}: MAIL FROM:<${tx.mailFrom}>`);
    this.c.sent.push({ host: this.host, tx });
    const mail = reply('250 2.1.0 ok');
    const recipients: RecipientResult[] = tx.recipients.map((r) => {
      const rr = reply(this.s.rcpt?.[r.address] ?? '250 2.1.5 ok');
      return rr.code === 250
        ? { address: r.address, ok: true, temporary: false, reply: rr, stage: 'rcpt' }
        : { address: r.address, ok: false, temporary: rr.code < 500, reply: rr, stage: 'rcpt' };
    });
    const end = reply(this.s.data ?? '250 2.0.0 queued');
    for (const x of recipients)
      if (x.ok) Object.assign(x, { ok: end.code === 250, temporary: end.code < 500, reply: end, stage: 'data' });
    return { mail, recipients, data: end, pipelined: true, fixedLineEnds: 0 };
  }
  async reset(): Promise<void> {
    this.c.log.push(`${this.host}: RSET`);
  }
  async quit(): Promise<void> {
    this.c.log.push(`${this.host}: QUIT`);
    this.closed = true;
  }
  close(): void {
    this.closed = true;
  }
}

export const NO_MX: MxLookup = { records: [], nullMx: false, implicit: false, nullMxMixed: false };

/** A DnsClient answering MX from a table; every host has address 192.0.2.<n>. */
export function tableDns(mx: Record<string, string[] | MxLookup>): DnsClient & { asked: string[] } {
  const asked: string[] = [];
  const lookup = async (d: string): Promise<MxLookup> => {
    asked.push(`MX ${d}`);
    const v = mx[d];
    if (v === undefined) return NO_MX;
    if (!Array.isArray(v)) return v;
    return {
      records: v.map((exchange, i) => ({ exchange, priority: 10 * (i + 1) })),
      nullMx: false,
      implicit: false,
      nullMxMixed: false,
    };
  };
  return {
    asked,
    servers: null,
    mx: async (d) => (await lookup(d)).records,
    mxLookup: lookup,
    addresses: async (h) => {
      asked.push(`A ${h}`);
      return [`192.0.2.${(h.length % 200) + 1}`];
    },
    txt: async () => [],
    srv: async () => ({ records: [], notAvailable: false }),
  };
}

export function answer<T>(
  qname: string,
  qtype: DnssecAnswer<T>['qtype'],
  status: DnssecStatus,
  records: T[],
  rcode: DnssecAnswer<T>['rcode'] = 'NOERROR',
): DnssecAnswer<T> {
  const failed = status === 'bogus' || status === 'indeterminate';
  return {
    qname,
    qtype,
    status,
    rcode: failed ? null : rcode,
    records: failed ? [] : records,
    canonicalName: qname,
    detail: failed ? 'SERVFAIL' : null,
  };
}

/** A validating resolver from tables; unlisted names are insecure and empty. */
export function tableDnssec(o: {
  mx?: Record<string, DnssecAnswer<MxRecord>>;
  addresses?: Record<string, DnssecAnswer<string>>;
  tlsa?: Record<string, DnssecAnswer<TlsaRecord>>;
}): DnssecResolver & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    server: '127.0.0.1:53',
    validating: true,
    mx: async (d) => {
      asked.push(`MX ${d}`);
      return o.mx?.[d] ?? answer<MxRecord>(d, 'MX', 'insecure', []);
    },
    addresses: async (h) => {
      asked.push(`A ${h}`);
      return o.addresses?.[h] ?? answer<string>(h, 'A', 'insecure', ['192.0.2.1']);
    },
    txt: async (n) => answer<string[]>(n, 'TXT', 'insecure', []),
    tlsa: async (h, port) => {
      asked.push(`TLSA ${h}`);
      return o.tlsa?.[h] ?? answer<TlsaRecord>(`_${port}._tcp.${h}`, 'TLSA', 'insecure', []);
    },
  };
}

export class RecordingSink implements EventSink {
  readonly events: PosternEvent[] = [];
  emit(e: PosternEvent): void {
    this.events.push(e);
  }
  of<K extends PosternEvent['event']>(name: K): Array<Extract<PosternEvent, { event: K }>> {
    return this.events.filter((e): e is Extract<PosternEvent, { event: K }> => e.event === name);
  }
}

export function baseDeps(
  policy: PolicyTableSpec,
  connector: Connector,
  dns: DnsClient,
  extra: Partial<DeliveryDeps> = {},
): DeliveryDeps {
  return {
    dns,
    policy: new PolicyTable(policy),
    routes: {},
    heloName: 'gw.test',
    now: () => new Date('2026-01-01T00:00:00Z'),
    connector,
    ...extra,
  };
}
