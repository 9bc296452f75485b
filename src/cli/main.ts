/**
 * The postern CLI. Thin by design: parse arguments, call one function, print. Every error a user
 * can cause is a PosternError printed as "postern: <message>" plus a hint; never a stack trace.
 */
import { Command, CommanderError, Option } from 'commander';
import { isPosternError } from '../core/errors.ts';
import { VERSION } from '../core/version.ts';
import { registerUserCommands } from './commands/user.ts';
// Type-only: erased at run time, so the lazy loading below stays lazy.
import type { DemoCliOptions } from './commands/demo.ts';
import type { PolicyCliOptions } from './commands/policy.ts';
import type { QueueCliOptions } from './commands/queue.ts';
import type { ScanCliOptions } from './commands/scan.ts';
import type { ServeCliOptions } from './commands/serve.ts';
import type { TestbedCliOptions } from './commands/testbed.ts';
import type { TlsRptShowOptions } from './commands/tlsrpt.ts';
// Command modules are imported when their command runs: loading the testbed, HTML renderer or
// gateway for a plain scan would only slow start-up.

export const EXIT = { ok: 0, findings: 1, usage: 2, unreachable: 3, internal: 4 } as const;

function intOption(name: string, min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < min || n > max)
      throw new CommanderError(
        EXIT.usage,
        'postern.invalidArgument',
        `${name} must be an integer from ${min} to ${max}, got "${value}"`,
      );
    return n;
  };
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export function buildProgram(out: { exitCode: number }): Command {
  const program = new Command('postern')
    .description('Provably secure mail transport: audit, gateway, tunnel and testbed for mail TLS')
    .version(VERSION)
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });

  program
    .command('scan')
    .description(
      'audit the TLS of mail endpoints (smtp://, submission://, smtps://, imap://, imaps://, pop3://, pop3s:// or host:port)',
    )
    .argument('[targets...]', 'mail domains (example.org: MX hosts) or endpoints to scan')
    .option('-f, --file <path>', 'read targets from a file (one per line, # comments); "-" for stdin')
    .option('--json', 'print the JSON report (schemaVersion 1, docs/scan-schema.md)')
    .option('--html <file>', 'also write a self-contained HTML report to <file>')
    .option(
      '--profile <id|file>',
      'grading profile: bsi (BSI TR-02102-2), ncsc-nl, mozilla-intermediate, mozilla-modern, or a YAML profile file',
      'bsi',
    )
    .option('--services <list>', 'for mail-domain targets: mx,submission,imap,pop3', 'mx')
    .option(
      '--dns-server <ip[:port]>',
      'resolve through this DNS server instead of the system resolver (repeatable)',
      collect,
    )
    .option('--trust-ad', 'trust the DNSSEC AD bit of a --dns-server that is not on loopback (DANE checks)')
    .option('--name <hostname>', 'name the certificate must match (default: the target host)')
    .option('--ca-file <path>', 'add trust anchors from a PEM file (repeatable)', collect)
    .addOption(
      new Option('--max-conn-per-ip <n>', 'concurrent connections per address')
        .argParser(intOption('--max-conn-per-ip', 1, 16))
        .default(2),
    )
    .addOption(
      new Option('--timeout <ms>', 'per-step network timeout in milliseconds')
        .argParser(intOption('--timeout', 100, 120_000))
        .default(10_000),
    )
    .addOption(
      new Option('--endpoint-timeout <ms>', 'total time for one endpoint, all connections included')
        .argParser(intOption('--endpoint-timeout', 1_000, 3_600_000))
        .default(120_000),
    )
    .option('--no-injection-test', 'skip the safe STARTTLS command-injection check')
    .action(async (targets: string[], opts: ScanCliOptions) => {
      const { scanCommand } = await import('./commands/scan.ts');
      out.exitCode = await scanCommand(targets, opts);
    });

  program
    .command('testbed')
    .description('start deliberately (mis)configured mail servers on loopback and print their manifest')
    .option('--address <ip>', 'loopback address to listen on', '127.0.0.1')
    .addOption(
      new Option('--base-port <n>', 'first port (0 = ephemeral ports)')
        .argParser(intOption('--base-port', 0, 65000))
        .default(12500),
    )
    .option('--only <ids>', 'comma-separated server ids or globs (e.g. smtp-good,legacy-*)')
    .option('--state-dir <dir>', 'cache the testbed CA and keys here', 'var/testbed')
    .option('--manifest <path>', 'write the manifest JSON here (default: <state-dir>/manifest.json)')
    .option('--json', 'print the manifest as JSON instead of a table')
    .action(async (opts: TestbedCliOptions) => {
      const { testbedCommand } = await import('./commands/testbed.ts');
      out.exitCode = await testbedCommand(opts);
    });

  program
    .command('demo')
    .description('start the testbed and scan every server in it: shows what postern finds, with nothing external')
    .option('--only <ids>', 'comma-separated server ids or globs')
    .option('--json', 'print the scan report as JSON')
    .action(async (opts: DemoCliOptions) => {
      const { demoCommand } = await import('./commands/demo.ts');
      out.exitCode = await demoCommand(opts);
    });
  program
    .command('serve')
    .description('run the gateway MTA (MX + submission in, queue, policy-enforced delivery out)')
    .option('-c, --config <file>', 'YAML config (docs/configuration.md); default: the embedded localhost setup')
    .option('--state-dir <dir>', 'state for the embedded default (certificate, queue)', 'var')
    .action(async (opts: ServeCliOptions) => {
      const { serveCommand } = await import('./commands/serve.ts');
      out.exitCode = await serveCommand(opts);
    });

  program
    .command('queue')
    .description('inspect and act on the queue of a running server: list | show ID | retry ID | delete ID | flush')
    .argument('<action>', 'list, show, retry, delete or flush')
    .argument('[id]', 'queue id (show, retry, delete)')
    .option('--admin <url>', 'admin endpoint of the running server (default: from the config)')
    .option('-c, --config <file>', 'YAML config to read the admin endpoint from')
    .option('--state-dir <dir>', 'state dir of the embedded default', 'var')
    .option('--token-file <file>', 'admin token of the running server (default: admin.tokenFile of the config)')
    .option('--limit <n>', 'list: at most this many messages (default 100, at most 1000)')
    .option('--offset <n>', 'list: skip this many first (see the "more:" line)')
    .option('--json', 'print JSON')
    .action(async (action: string, id: string | undefined, opts: QueueCliOptions) => {
      const { queueCommand } = await import('./commands/queue.ts');
      out.exitCode = await queueCommand(action, id, opts);
    });

  program
    .command('policy')
    .description('outbound TLS policy tools')
    .command('check')
    .description('what would happen to mail for DOMAIN now: MX hosts, TLS outcome per host, the deciding rule')
    .argument('<domain>')
    .option('-c, --config <file>', 'YAML config (policy, routes, dns)')
    .option('--state-dir <dir>', 'state dir of the embedded default', 'var')
    .option('--json', 'print JSON')
    .action(async (domain: string, opts: PolicyCliOptions) => {
      const { policyCheckCommand } = await import('./commands/policy.ts');
      out.exitCode = await policyCheckCommand(domain, opts);
    });

  program
    .command('tlsrpt')
    .description('TLS reporting (RFC 8460): the reports the gateway will send')
    .command('show')
    .description('what will be sent: per policy domain and UTC day, successes and failures by result type')
    .option('-c, --config <file>', 'YAML config (tlsrpt.store, organization, contact)')
    .option('--state-dir <dir>', 'state dir of the embedded default (reads <dir>/tlsrpt.sqlite)', 'var')
    .option('--day <YYYY-MM-DD>', 'that UTC day, whatever its delivery state (default: every day not yet sent)')
    .option('--domain <domain>', 'only this policy domain')
    .option('--json', 'print the RFC 8460 report JSON (an array, one per policy domain and UTC day)')
    .action(async (opts: TlsRptShowOptions) => {
      const { tlsrptShowCommand } = await import('./commands/tlsrpt.ts');
      out.exitCode = await tlsrptShowCommand(opts);
    });

  registerUserCommands(program);
  return program;
}

/** Runs the CLI; returns the process exit code. */
export async function main(argv: string[]): Promise<number> {
  const out = { exitCode: EXIT.ok as number };
  const program = buildProgram(out);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return out.exitCode;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help')
        return EXIT.ok;
      if (e.code === 'postern.invalidArgument') process.stderr.write(`postern: ${e.message}\n`);
      return EXIT.usage;
    }
    if (isPosternError(e)) {
      process.stderr.write(`postern: ${e.message}\n`);
      if (e.hint) process.stderr.write(`hint: ${e.hint}\n`);
      return e.code === 'usage' || e.code.startsWith('config') || e.code.startsWith('testbed-')
        ? EXIT.usage
        : EXIT.unreachable;
    }
    // A bug in postern: say so plainly, with a pointer, but keep the trace out of the user's face
    // unless they ask for it.
    process.stderr.write(`postern: internal error: ${e instanceof Error ? e.message : String(e)}\n`);
    process.stderr.write('hint: this is a bug in postern; re-run with POSTERN_DEBUG=1 for details and report it\n');
    if (process.env['POSTERN_DEBUG']) process.stderr.write(`${e instanceof Error ? e.stack : ''}\n`);
    return EXIT.internal;
  }
}
