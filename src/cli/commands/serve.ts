import { pino } from 'pino';
import { loadEmbeddedConfig } from '../../config/defaults.ts';
import { loadConfig } from '../../config/load.ts';
import type { GatewayConfig } from '../../config/schema.ts';
import { startGateway } from '../../gateway/gateway.ts';

export interface ServeCliOptions {
  config?: string;
  stateDir: string;
}

/**
 * `postern serve`: with --config a validated YAML config, else the embedded default (localhost high
 * ports, a generated self-signed certificate, queue under ./var). Logs are JSON lines on stdout
 * (pino); the listeners are summarised on stderr. SIGTERM/SIGINT stop gracefully, SIGHUP reloads
 * users and policy.
 */
export async function serveCommand(opts: ServeCliOptions): Promise<number> {
  const load = (): Promise<GatewayConfig> =>
    opts.config ? loadConfig(opts.config) : loadEmbeddedConfig(opts.stateDir);
  const config = await load();
  const log = pino({ level: config.log.level, base: { svc: 'postern' } });
  const gw = await startGateway(config, { log });
  process.stderr.write(
    `postern serve: ${config.source ? `config ${config.source}` : `embedded default (state in ${opts.stateDir})`}\n`,
  );
  for (const l of gw.listeners) {
    const spec = config.listen.find((x) => x.name === l.name);
    process.stderr.write(
      `  ${l.name.padEnd(12)} ${l.address}:${l.port}  ${spec?.mode ?? ''} ${spec?.role ?? ''}${spec && spec.auth !== 'none' ? ` auth ${spec.auth}` : ''}\n`,
    );
  }
  if (gw.admin)
    process.stderr.write(
      `  ${'admin'.padEnd(12)} http://${gw.admin.address}:${gw.admin.port}/metrics, /queue (bearer token in ${config.admin?.tokenFile ?? '?'})\n`,
    );
  process.stderr.write(`  queue        ${config.queue.dir}\n`);

  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      process.off('SIGHUP', hup);
      resolve();
    };
    const hup = (): void => {
      load()
        .then((next) => gw.reload(next))
        .catch((e: unknown) =>
          log.error({ event: 'gateway.reload-failed', err: e instanceof Error ? e.message : String(e) }),
        );
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    process.on('SIGHUP', hup);
  });
  await gw.stop();
  return 0;
}
