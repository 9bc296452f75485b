import { UsageError, PosternError } from '../../core/errors.ts';
import { loadEmbeddedConfig } from '../../config/defaults.ts';
import { loadConfig } from '../../config/load.ts';
import type { QueuedMessage, RecipientState } from '../../queue/types.ts';

export interface QueueCliOptions {
  admin?: string;
  config?: string;
  stateDir: string;
  json?: boolean;
}

async function adminUrl(opts: QueueCliOptions): Promise<string> {
  if (opts.admin) return opts.admin.replace(/\/$/, '');
  const config = opts.config ? await loadConfig(opts.config) : await loadEmbeddedConfig(opts.stateDir);
  if (!config.admin)
    throw new UsageError('the admin endpoint is disabled in the config', {
      hint: 'set admin.address/admin.port, or pass --admin URL',
    });
  const host = config.admin.address.includes(':') ? `[${config.admin.address}]` : config.admin.address;
  return `http://${host}:${config.admin.port}`;
}

async function call(base: string, method: string, path: string): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(`${base}${path}`, { method, signal: AbortSignal.timeout(10_000) });
  } catch (e) {
    throw new PosternError(
      'admin-unreachable',
      `cannot reach the running server at ${base}: ${(e as Error).cause instanceof Error ? ((e as Error).cause as Error).message : (e as Error).message}`,
      {
        hint: 'is `postern serve` running? pass --admin URL or --config FILE',
      },
    );
  }
  const body = (await res.json()) as { error?: string };
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
  const base = await adminUrl(opts);
  const needId = (): string => {
    if (!id) throw new UsageError(`queue ${action} needs a queue id`, { hint: 'see `postern queue list`' });
    return id;
  };
  let out: unknown;
  switch (action) {
    case 'list':
      out = await call(base, 'GET', '/queue');
      break;
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
  const list = out as { counts: Record<RecipientState, number>; messages: QueuedMessage[] };
  process.stdout.write(
    `${Object.entries(list.counts)
      .map(([k, v]) => `${k}: ${v}`)
      .join('  ')}\n`,
  );
  for (const m of list.messages) process.stdout.write(`${summary(m)}\n`);
  return 0;
}
