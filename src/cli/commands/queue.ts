import { UsageError, PosternError } from '../../core/errors.ts';
import { embeddedDefaults } from '../../config/defaults.ts';
import { loadConfig } from '../../config/load.ts';
import type { GatewayConfig } from '../../config/schema.ts';
import { readToken } from '../../gateway/admin.ts';
import type { QueuedMessage, RecipientState } from '../../queue/types.ts';

export interface QueueCliOptions {
  admin?: string;
  config?: string;
  stateDir: string;
  /** The admin token file (default: the config's admin.tokenFile). */
  tokenFile?: string;
  json?: boolean;
  /** `list`: page size and first message (GET /queue?limit&offset). */
  limit?: string;
  offset?: string;
}

/** Where the running server is and the token it wants: --admin/--token-file, else the config. */
async function endpoint(opts: QueueCliOptions): Promise<{ base: string; token: string }> {
  let config: GatewayConfig | undefined;
  // The embedded default's paths are computed, not created: this command never writes state.
  const getConfig = async (): Promise<GatewayConfig> =>
    (config ??= opts.config ? await loadConfig(opts.config) : embeddedDefaults(opts.stateDir));
  const disabled = (): UsageError =>
    new UsageError('the admin endpoint is disabled in the config', {
      hint: 'set admin.address/admin.port, or pass --admin URL and --token-file FILE',
    });
  let base: string;
  if (opts.admin) base = opts.admin.replace(/\/$/, '');
  else {
    const admin = (await getConfig()).admin;
    if (!admin) throw disabled();
    const host = admin.address.includes(':') ? `[${admin.address}]` : admin.address;
    base = `http://${host}:${admin.port}`;
  }
  let tokenFile = opts.tokenFile;
  if (tokenFile === undefined) {
    const admin = (await getConfig()).admin;
    if (!admin) throw disabled();
    tokenFile = admin.tokenFile;
  }
  const token = await readToken(tokenFile);
  if (token === null)
    throw new PosternError('admin-token', `no admin token at ${tokenFile}`, {
      hint: '`postern serve` creates it at first start; pass --config (or --state-dir) of the running server, or --token-file',
    });
  return { base, token };
}

async function call(ep: { base: string; token: string }, method: string, path: string): Promise<unknown> {
  const { base } = ep;
  let res: Response;
  try {
    res = await fetch(`${base}${path}`, {
      method,
      // State changes must not look like a CORS simple request: the server wants JSON.
      headers: {
        authorization: `Bearer ${ep.token}`,
        ...(method === 'GET' ? {} : { 'content-type': 'application/json' }),
      },
      ...(method === 'GET' ? {} : { body: '{}' }),
      signal: AbortSignal.timeout(10_000),
    });
  } catch (e) {
    throw new PosternError(
      'admin-unreachable',
      `cannot reach the running server at ${base}: ${(e as Error).cause instanceof Error ? ((e as Error).cause as Error).message : (e as Error).message}`,
      {
        hint: 'is `postern serve` running? pass --admin URL or --config FILE',
      },
    );
  }
  const body = (await res.json().catch(() => ({}))) as { error?: string };
  if (res.status === 401)
    throw new PosternError('admin-unauthorized', `the server at ${base} refused the admin token`, {
      hint: 'the token file does not belong to that server: pass the --config (or --state-dir) it runs with, or --token-file',
    });
  if (!res.ok)
    throw new PosternError(res.status === 404 ? 'queue-not-found' : 'admin-error', body.error ?? `HTTP ${res.status}`);
  return body;
}

function summary(m: QueuedMessage): string {
  const states = m.recipients.map((r) => `${r.address} ${r.state}${r.reason ? ` (${r.reason})` : ''}`);
  return `${m.id}  ${m.createdAt}  ${m.size} bytes  from <${m.envelope.mailFrom}>\n    ${states.join('\n    ')}`;
}

/** `postern queue list|show|retry|delete|flush`, against a running server's admin endpoint. */
export async function queueCommand(action: string, id: string | undefined, opts: QueueCliOptions): Promise<number> {
  const base = await endpoint(opts);
  const needId = (): string => {
    if (!id) throw new UsageError(`queue ${action} needs a queue id`, { hint: 'see `postern queue list`' });
    return id;
  };
  let out: unknown;
  switch (action) {
    case 'list': {
      const q = new URLSearchParams();
      for (const k of ['limit', 'offset'] as const) {
        const v = opts[k];
        if (v === undefined) continue;
        if (!/^\d{1,9}$/.test(v)) throw new UsageError(`--${k} needs a number, not "${v}"`);
        q.set(k, v);
      }
      out = await call(base, 'GET', `/queue${q.size > 0 ? `?${q.toString()}` : ''}`);
      break;
    }
    case 'show':
      out = await call(base, 'GET', `/queue/${encodeURIComponent(needId())}`);
      break;
    case 'retry':
      out = await call(base, 'POST', `/queue/${encodeURIComponent(needId())}/retry`);
      break;
    case 'delete':
      out = await call(base, 'DELETE', `/queue/${encodeURIComponent(needId())}`);
      break;
    case 'flush':
      out = await call(base, 'POST', '/queue/flush');
      break;
    default:
      throw new UsageError(`unknown queue action "${action}"`, { hint: 'use list, show, retry, delete or flush' });
  }
  if (opts.json || action !== 'list') {
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    return 0;
  }
  const list = out as { counts: Record<RecipientState, number>; messages: QueuedMessage[]; next?: number | null };
  process.stdout.write(
    `${Object.entries(list.counts)
      .map(([k, v]) => `${k}: ${v}`)
      .join('  ')}\n`,
  );
  for (const m of list.messages) process.stdout.write(`${summary(m)}\n`);
  if (typeof list.next === 'number') process.stdout.write(`more: postern queue list --offset ${list.next}\n`);
  return 0;
}
