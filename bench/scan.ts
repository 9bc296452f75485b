/**
 * Benchmark (issue 3): a full TLS audit of one loopback Postfix (Debian defaults, RSA-2048
 * certificate) by postern, sslscan and testssl.sh, in the same run, each reaching Postfix through
 * the same connection-counting relay. Reports median wall time, connections, the suites each tool
 * found (by code point, per protocol) and what each missed against testssl.sh's `-E` run.
 *
 * Targets: postern's full audit takes no longer than sslscan's and ≥ 50× less than testssl.sh's,
 * while finding every suite testssl.sh finds.
 *
 *   node bench/scan.ts [--runs N] [--testssl-runs N] [--profile] [--no-doc]
 *
 * Needs root and the Debian peers (scripts/install-peers.sh). Writes its table to docs/benchmarks.md.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { makeSelfSignedCert } from '../test/integration/peers/certs.ts';
import { postfixAvailable, startPostfix } from '../test/integration/peers/postfix.ts';
import { runTestsslCiphers, testsslAvailable } from '../test/integration/peers/testssl.ts';
import { withTempDir } from '../test/integration/peers/tmp.ts';
import { VERSIONS } from '../src/tls/wire/constants.ts';
import type { VersionName } from '../src/tls/wire/constants.ts';
import { formatSuiteCode, suiteByCode, suiteByName } from '../src/tls/wire/suites.ts';
import { fmtS, haveCommand, median, timedRun, writeDocSection } from './common.ts';
import { startCountingRelay } from './relay.ts';
import type { CountingRelay } from './relay.ts';
import { profileAudit } from './scan-profile.ts';

/** Accepted suites per protocol version. */
export type SuiteSets = Map<VersionName, Set<number>>;

function emptySets(): SuiteSets {
  return new Map(VERSIONS.map((v) => [v, new Set<number>()]));
}

function countSuites(s: SuiteSets): number {
  let n = 0;
  for (const set of s.values()) n += set.size;
  return n;
}

/** Entries of `want` (per version) that `have` lacks, as "TLSv1.2 0xC030 NAME". */
export function missing(want: SuiteSets, have: SuiteSets): string[] {
  const out: string[] = [];
  for (const v of VERSIONS) {
    for (const c of [...(want.get(v) ?? [])].sort((a, b) => a - b)) {
      if (!have.get(v)?.has(c)) out.push(`${v} ${formatSuiteCode(c)} ${suiteByCode(c)?.name ?? '?'}`);
    }
  }
  return out;
}

function stripAnsi(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\x1b\[[0-9;]*m/g, '');
}

const SSLSCAN_VERSIONS: Record<string, VersionName> = {
  SSLv2: 'SSLv2',
  SSLv3: 'SSLv3',
  'TLSv1.0': 'TLSv1.0',
  'TLSv1.1': 'TLSv1.1',
  'TLSv1.2': 'TLSv1.2',
  'TLSv1.3': 'TLSv1.3',
};

/**
 * Suites from sslscan 2.x text output ("Accepted  TLSv1.2  256 bits  ECDHE-RSA-AES256-GCM-SHA384 …",
 * "Preferred …"); OpenSSL and IANA names are both resolved through the suite registry.
 */
export function parseSslscan(text: string): { suites: SuiteSets; unknown: string[] } {
  const suites = emptySets();
  const unknown: string[] = [];
  const plain = stripAnsi(text);
  for (const line of plain.split('\n')) {
    const m = /^(?:Accepted|Preferred)\s+(SSLv[23]|TLSv1\.[0-3])\s+\d+\s+bits\s+(\S+)/.exec(line.trim());
    if (!m) continue;
    const v = SSLSCAN_VERSIONS[m[1] ?? ''];
    const s = suiteByName(m[2] ?? '');
    if (v === undefined || s === undefined) unknown.push(line.trim());
    else suites.get(v)?.add(s.code);
  }
  return { suites, unknown };
}

/** Suites from a postern JSON report (the first target). */
export function parsePosternReport(report: unknown): { suites: SuiteSets; probeMs: number; connections: number } {
  const suites = emptySets();
  const t = (report as { targets?: unknown[] }).targets?.[0] as
    | { ciphers?: Array<{ protocol: VersionName; code: string }>; stats?: { durationMs: number; connections: number } }
    | undefined;
  for (const c of t?.ciphers ?? []) suites.get(c.protocol)?.add(Number.parseInt(c.code, 16));
  return { suites, probeMs: t?.stats?.durationMs ?? NaN, connections: t?.stats?.connections ?? NaN };
}

export interface ToolRow {
  tool: string;
  runs: number[];
  connections: number[];
  suites: SuiteSets | null;
  note?: string;
}

/** Run `fn` with the relay counter reset; returns the connections the relay accepted meanwhile. */
async function counted<T>(relay: CountingRelay, fn: () => Promise<T>): Promise<{ value: T; connections: number }> {
  // A previous tool's last connections may still be closing.
  for (let i = 0; i < 50 && relay.open() > 0; i++) await new Promise((r) => setTimeout(r, 20));
  relay.reset();
  const value = await fn();
  // Let the relay see connections that were accepted just before the tool exited.
  await new Promise((r) => setTimeout(r, 100));
  return { value, connections: relay.connections() };
}

async function versions(): Promise<Record<string, string>> {
  const pick = async (cmd: string, args: string[], re: RegExp): Promise<string> => {
    const r = await timedRun(cmd, args, { timeoutMs: 30_000 }).catch(() => null);
    return re.exec(stripAnsi((r?.stdout ?? '') + (r?.stderr ?? '')))?.[1] ?? '?';
  };
  return {
    postfix: await pick('/usr/sbin/postconf', ['-d', 'mail_version'], /mail_version = (\S+)/),
    sslscan: await pick('sslscan', ['--version'], /(\d+\.\d+\.\d+)/),
    testssl: await pick('testssl', ['--version'], /testssl\s+(\d+\.\d+\.\d+)/),
    openssl: await pick('openssl', ['version'], /OpenSSL (\S+)/),
    node: process.versions.node,
  };
}

interface Options {
  runs: number;
  testsslRuns: number;
  profile: boolean;
  doc: boolean;
}

export async function benchScan(o: Options): Promise<string> {
  if (process.getuid?.() !== 0) throw new Error('bench/scan needs root (Postfix must start as root)');
  for (const [ok, what] of [
    [postfixAvailable(), 'postfix'],
    [testsslAvailable(), 'testssl.sh'],
    [haveCommand('sslscan'), 'sslscan'],
  ] as const) {
    if (!ok) throw new Error(`${what} is not installed: run scripts/install-peers.sh as root`);
  }
  const tools = await versions();
  const loadStart = await loadAverage();
  const cert = await makeSelfSignedCert();
  const pf = await startPostfix({ ...cert });
  const relay = await startCountingRelay('127.0.0.1', pf.port);
  const target = `127.0.0.1:${relay.port}`;
  const log = (s: string): void => void process.stderr.write(`${s}\n`);
  log(`Postfix ${tools['postfix']} on 127.0.0.1:${pf.port}, relay on ${target}`);
  try {
    const rows: ToolRow[] = [];
    const postern: ToolRow = { tool: 'postern scan', runs: [], connections: [], suites: null };
    const posternCached: ToolRow = {
      tool: 'postern scan, compile cache warm',
      runs: [],
      connections: [],
      suites: null,
      note: 'NODE_COMPILE_CACHE set (not the default)',
    };
    const probeMs: number[] = [];
    const posternArgs = ['bin/postern.js', 'scan', '--json', `smtp://${target}`];
    const runPostern = async (row: ToolRow, env: NodeJS.ProcessEnv, timed: boolean): Promise<void> => {
      const { value: r, connections } = await counted(relay, () =>
        timedRun(process.execPath, posternArgs, { timeoutMs: 300_000, env }),
      );
      if (r.timedOut || r.stdout.trim() === '') throw new Error(`postern scan failed: ${r.stderr.slice(-2000)}`);
      const parsed = parsePosternReport(JSON.parse(r.stdout) as unknown);
      if (!timed) return;
      row.runs.push(r.wallMs);
      row.connections.push(connections);
      row.suites = parsed.suites;
      if (row === postern) probeMs.push(parsed.probeMs);
      log(`${row.tool}: ${fmtS(r.wallMs)} s, ${connections} connections (probe ${parsed.probeMs} ms)`);
    };
    // One untimed warm-up each, so no tool pays for a cold page cache.
    await runPostern(postern, process.env, false);
    for (let i = 0; i < o.runs; i++) await runPostern(postern, process.env, true);
    await withTempDir('bench-cc', async (cc) => {
      const env = { ...process.env, NODE_COMPILE_CACHE: cc };
      await runPostern(posternCached, env, false);
      for (let i = 0; i < o.runs; i++) await runPostern(posternCached, env, true);
    });

    const sslscan: ToolRow = { tool: 'sslscan (default run)', runs: [], connections: [], suites: null };
    const sslscanArgs = ['--no-colour', '--starttls-smtp', target];
    await timedRun('sslscan', sslscanArgs, { timeoutMs: 300_000 });
    let sslscanUnknown: string[] = [];
    for (let i = 0; i < o.runs; i++) {
      const { value: r, connections } = await counted(relay, () =>
        timedRun('sslscan', sslscanArgs, { timeoutMs: 300_000 }),
      );
      const parsed = parseSslscan(r.stdout);
      if (countSuites(parsed.suites) === 0) throw new Error(`sslscan found nothing:\n${r.stdout.slice(-3000)}`);
      sslscan.runs.push(r.wallMs);
      sslscan.connections.push(connections);
      sslscan.suites = parsed.suites;
      sslscanUnknown = parsed.unknown;
      log(`sslscan: ${fmtS(r.wallMs)} s, ${connections} connections`);
    }

    const testsslE: ToolRow = { tool: 'testssl.sh -E (ciphers only)', runs: [], connections: [], suites: null };
    for (let i = 0; i < o.testsslRuns; i++) {
      const { value: r, connections } = await counted(relay, () =>
        runTestsslCiphers({ host: '127.0.0.1', port: relay.port, starttls: 'smtp', timeoutMs: 900_000 }),
      );
      testsslE.runs.push(r.durationMs);
      testsslE.connections.push(connections);
      testsslE.suites = r.suites;
      log(`testssl -E: ${fmtS(r.durationMs)} s, ${connections} connections`);
    }

    const testsslFull: ToolRow = {
      tool: 'testssl.sh (full default run)',
      runs: [],
      connections: [],
      suites: null,
      note: '',
    };
    for (let i = 0; i < o.testsslRuns; i++) {
      await withTempDir('bench-testssl', async (dir) => {
        const jsonFile = join(dir, 'full.json');
        const args = [
          '--starttls',
          'smtp',
          '--warnings',
          'off',
          '--nodns',
          'none',
          '--ip',
          '127.0.0.1',
          '--quiet',
          '--color',
          '0',
          '--connect-timeout',
          '10',
          '--openssl-timeout',
          '10',
          '--jsonfile',
          jsonFile,
          target,
        ];
        const { value: r, connections } = await counted(relay, () =>
          timedRun('testssl', args, {
            timeoutMs: 900_000,
            cwd: dir,
            env: { ...process.env, TERM: 'dumb', COLUMNS: '200' },
          }),
        );
        const json = await readFile(jsonFile, 'utf8').catch(() => '');
        if (r.timedOut || json.trim() === '') throw new Error(`testssl full run failed: ${r.stdout.slice(-3000)}`);
        const findings = JSON.parse(json) as Array<{ id?: string; severity?: string }>;
        const fatal = findings.filter((f) => f.severity === 'FATAL' || f.id === 'scanProblem');
        if (fatal.length > 0) throw new Error(`testssl full run reported a scan problem: ${JSON.stringify(fatal)}`);
        testsslFull.runs.push(r.wallMs);
        testsslFull.connections.push(connections);
        testsslFull.note = `${findings.length} findings`;
        log(`testssl full: ${fmtS(r.wallMs)} s, ${connections} connections`);
      });
    }
    rows.push(postern, posternCached, sslscan, testsslFull, testsslE);

    const oracle = testsslE.suites ?? emptySets();
    const md = render(rows, oracle, {
      tools,
      probeMs: median(probeMs),
      runs: o.runs,
      testsslRuns: o.testsslRuns,
      sslscanUnknown,
      load: `${loadStart} at the start, ${await loadAverage()} at the end`,
    });
    let profile = '';
    if (o.profile || median(postern.runs) > median(sslscan.runs)) {
      log('profiling postern (in-process, per phase) …');
      profile = await profileAudit('127.0.0.1', relay);
    }
    const out = profile === '' ? md : `${md}\n\n${profile}`;
    if (o.doc) await writeDocSection('scan', out);
    return out;
  } finally {
    await relay.close();
    await pf.stop();
  }
}

/** The 1/5/15-minute load average, for the record next to the numbers. */
async function loadAverage(): Promise<string> {
  return (await readFile('/proc/loadavg', 'utf8').catch(() => '? ? ?')).split(' ').slice(0, 3).join(' ');
}

function render(
  rows: ToolRow[],
  oracle: SuiteSets,
  ctx: {
    tools: Record<string, string>;
    probeMs: number;
    runs: number;
    testsslRuns: number;
    sslscanUnknown: string[];
    load: string;
  },
): string {
  const byTool = new Map(rows.map((r) => [r.tool, r]));
  const wall = (name: string): number => median(byTool.get(name)?.runs ?? []);
  const p = wall('postern scan');
  const pc = wall('postern scan, compile cache warm');
  const s = wall('sslscan (default run)');
  const tf = wall('testssl.sh (full default run)');
  const te = wall('testssl.sh -E (ciphers only)');
  const lines: string[] = [];
  lines.push('## `bench/scan`: one full audit of a loopback Postfix');
  lines.push('');
  lines.push(
    `Measured ${new Date().toISOString().slice(0, 10)} on this project's machine (2 cores): Postfix ${ctx.tools['postfix']} with Debian's ` +
      `default TLS settings and an RSA-2048 certificate, Node ${ctx.tools['node']}, OpenSSL ${ctx.tools['openssl']}, ` +
      `sslscan ${ctx.tools['sslscan']}, testssl.sh ${ctx.tools['testssl']}. Every tool reaches Postfix through the same ` +
      `loopback relay, which counts the TCP connections it accepts. Wall time is from spawning the tool's process to its ` +
      `exit (so Node's start-up is counted for postern); median of ${ctx.runs} runs after one untimed warm-up ` +
      `(testssl.sh: ${ctx.testsslRuns} run${ctx.testsslRuns === 1 ? '' : 's'}, no warm-up). postern runs its default full ` +
      `audit (\`postern scan --json smtp://…\`, --max-conn-per-ip 2, injection check on); sslscan its default run ` +
      `(\`sslscan --starttls-smtp\`); testssl.sh its full default run and, as the suite oracle, \`-E\`. ` +
      `Load average (1/5/15 min) ${ctx.load} (the machine is shared: compare the ratios).`,
  );
  lines.push('');
  lines.push('| tool | median wall (s) | runs (s) | connections | suites found | missed vs testssl.sh -E |');
  lines.push('| --- | ---: | --- | ---: | ---: | ---: |');
  for (const r of rows) {
    const found = r.suites ? String(countSuites(r.suites)) : '–';
    const miss = r.suites ? String(missing(oracle, r.suites).length) : '–';
    lines.push(
      `| ${r.tool}${r.note ? ` (${r.note})` : ''} | ${fmtS(median(r.runs))} | ${r.runs.map(fmtS).join(', ')} | ` +
        `${[...new Set(r.connections)].join(', ')} | ${found} | ${miss} |`,
    );
  }
  lines.push('');
  const ratio = (a: number, b: number): string => (a / b).toFixed(2);
  lines.push(
    `- postern / sslscan wall time: **${ratio(p, s)}** (target ≤ 1.00) — with a warm compile cache ${ratio(pc, s)}`,
  );
  lines.push(`- testssl.sh full / postern wall time: **${(tf / p).toFixed(1)}×** (target ≥ 50×)`);
  lines.push(`- testssl.sh -E / postern wall time: ${(te / p).toFixed(1)}×`);
  lines.push(
    `- postern's probe itself (in-process \`stats.durationMs\`, median): ${(ctx.probeMs / 1000).toFixed(2)} s of its ${fmtS(p)} s; ` +
      `the rest is Node start-up, module loading, certificate analysis and the CVE-2011-0411 injection check.`,
  );
  const pMiss = byTool.get('postern scan')?.suites
    ? missing(oracle, byTool.get('postern scan')?.suites ?? emptySets())
    : [];
  lines.push(
    `- postern finds every suite testssl.sh -E finds: **${pMiss.length === 0 ? 'yes' : `no, missed ${pMiss.length}`}**`,
  );
  lines.push('');
  lines.push('Suites accepted per protocol version (code points):');
  lines.push('');
  const sets = rows.filter((r) => r.suites !== null && r.tool !== 'postern scan, compile cache warm');
  lines.push(`| version | ${sets.map((r) => r.tool).join(' | ')} |`);
  lines.push(`| --- | ${sets.map(() => '---:').join(' | ')} |`);
  for (const v of VERSIONS) lines.push(`| ${v} | ${sets.map((r) => r.suites?.get(v)?.size ?? 0).join(' | ')} |`);
  lines.push('');
  for (const r of sets) {
    if (r.tool.startsWith('testssl.sh -E')) continue;
    const miss = missing(oracle, r.suites ?? emptySets());
    const extra = missing(r.suites ?? emptySets(), oracle);
    lines.push(`${r.tool} missed (vs testssl.sh -E): ${miss.length === 0 ? 'none' : ''}`);
    for (const m of miss) lines.push(`  - ${m}`);
    if (extra.length > 0) {
      lines.push(`${r.tool} found beyond testssl.sh -E:`);
      for (const m of extra) lines.push(`  - ${m}`);
    }
    lines.push('');
  }
  if (ctx.sslscanUnknown.length > 0) {
    lines.push('sslscan lines whose suite name the registry does not know:');
    for (const u of ctx.sslscanUnknown) lines.push(`  - ${u}`);
  }
  return lines.join('\n').trimEnd();
}

const isMain = process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (isMain) {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '3' },
      'testssl-runs': { type: 'string', default: '1' },
      profile: { type: 'boolean', default: false },
      'no-doc': { type: 'boolean', default: false },
    },
  });
  const runs = Number(values.runs);
  const testsslRuns = Number(values['testssl-runs']);
  const md = await benchScan({
    runs: Number.isInteger(runs) && runs > 0 ? runs : 3,
    testsslRuns: Number.isInteger(testsslRuns) && testsslRuns > 0 ? testsslRuns : 1,
    profile: values.profile,
    doc: !values['no-doc'],
  });
  console.log(md);
}
