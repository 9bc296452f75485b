/**
 * Scan targets: mail URLs (smtp://, submission://, smtps://, imap://, imaps://, pop3://, pop3s://)
 * or bare host:port with the service inferred from the port (RFC 8314 port assignments).
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { UsageError } from '../core/errors.ts';
import type { Dialect } from '../tls/starttls/index.ts';

export type Service = 'smtp' | 'submission' | 'smtps' | 'imap' | 'imaps' | 'pop3' | 'pop3s';

const SERVICES: Record<Service, { port: number; dialect: Dialect }> = {
  smtp: { port: 25, dialect: 'smtp' },
  submission: { port: 587, dialect: 'smtp' },
  smtps: { port: 465, dialect: 'implicit' },
  imap: { port: 143, dialect: 'imap' },
  imaps: { port: 993, dialect: 'implicit' },
  pop3: { port: 110, dialect: 'pop3' },
  pop3s: { port: 995, dialect: 'implicit' },
};

const BY_PORT: Record<number, Service> = {
  25: 'smtp',
  587: 'submission',
  465: 'smtps',
  143: 'imap',
  993: 'imaps',
  110: 'pop3',
  995: 'pop3s',
};

export interface ScanTarget {
  url: string;
  service: Service;
  host: string;
  port: number;
  dialect: Dialect;
}

export interface ResolvedTarget extends ScanTarget {
  address: string;
}

function usage(input: string, why: string): UsageError {
  return new UsageError(`invalid target "${input}": ${why}`, {
    hint: 'use smtp://host[:25], submission://host[:587], smtps://host[:465], imap://host[:143], imaps://host[:993], pop3://host[:110], pop3s://host[:995] or host:port',
  });
}

/** Parses one target string. Throws UsageError with a hint on anything it cannot read. */
export function parseTarget(input: string): ScanTarget {
  const text = input.trim();
  let service: Service | undefined;
  let host: string;
  let portText: string | undefined;
  const m = /^([a-z0-9]+):\/\/(.+)$/i.exec(text);
  let rest = m ? (m[2] ?? '') : text;
  if (m) {
    const scheme = (m[1] ?? '').toLowerCase();
    if (!(scheme in SERVICES)) throw usage(input, `unknown scheme "${scheme}"`);
    service = scheme as Service;
    rest = rest.replace(/\/.*$/, '');
  }
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(rest);
  if (v6) {
    host = v6[1] ?? '';
    portText = v6[2];
  } else if (isIP(rest) === 6) {
    host = rest;
  } else {
    const i = rest.lastIndexOf(':');
    host = i >= 0 ? rest.slice(0, i) : rest;
    portText = i >= 0 ? rest.slice(i + 1) : undefined;
  }
  if (!host || !/^[a-z0-9._:-]+$/i.test(host)) throw usage(input, 'missing or invalid host');
  let port: number | undefined;
  if (portText !== undefined) {
    port = Number(portText);
    if (!/^\d+$/.test(portText) || port < 1 || port > 65535) throw usage(input, `invalid port "${portText}"`);
  }
  if (!service) {
    if (port === undefined) throw usage(input, 'give a scheme or a port');
    service = BY_PORT[port];
    if (!service) throw usage(input, `cannot infer the service from port ${port}`);
  }
  const def = SERVICES[service];
  port ??= def.port;
  host = host.toLowerCase();
  const url = `${service}://${host.includes(':') ? `[${host}]` : host}:${port}`;
  return { url, service, host, port, dialect: def.dialect };
}

/** Resolves a target's host through the system resolver (so /etc/hosts works): one entry per address. */
export async function resolveTarget(t: ScanTarget): Promise<ResolvedTarget[]> {
  if (isIP(t.host)) return [{ ...t, address: t.host }];
  const addrs = await lookup(t.host, { all: true, order: 'ipv6first' });
  return addrs.map((a) => ({ ...t, address: a.address }));
}
