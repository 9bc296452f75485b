/**
 * The layer matrix of src/ and a check that the code keeps to it: data flows one way (protocol
 * I/O at the edges, decisions in the middle, products on top, cli thin on top of everything), and
 * no file imports itself through others. Every edge counts: `import`, `import type`,
 * `export … from`, side-effect imports, dynamic `import()` and `import('…').T` types — a type-only
 * upward import still ties the lower layer to the higher one.
 *
 *   node scripts/check-layers.ts [root]   exit 0 when clean, 1 with one line per problem
 *
 * Run by `npm run lint` after ESLint; eslint.config.js also reports matrix violations per import
 * (the `postern/layers` rule) so editors show them. Files outside src/ (tests, bench, scripts)
 * may import any layer, but take part in the cycle check.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Rule } from 'eslint';
import ts from 'typescript';

/**
 * A unit is a top-level directory of src/, except tls/ and smtp/, whose parts are layered among
 * themselves (tls/wire is an edge, tls/evaluate a decision) and so are units of their own.
 */
export function unitOf(srcRelative: string): string {
  const parts = srcRelative.split(/[\\/]/);
  const top = parts[0] ?? '';
  if ((top === 'tls' || top === 'smtp') && parts.length > 1) return `${top}/${(parts[1] ?? '').replace(/\.ts$/, '')}`;
  return top.replace(/\.ts$/, '');
}

const TLS_ENGINE = ['tls/wire', 'tls/cert', 'tls/connect', 'tls/session', 'tls/handshake', 'tls/starttls'];
const TLS_ALL = [...TLS_ENGINE, 'tls/probe', 'tls/profiles', 'tls/evaluate', 'tls/offer'];
const EDGES = ['core', 'dns', 'net', 'mime', 'smtp/protocol'];

/**
 * Which unit may import which (besides itself). Bottom to top; each row may only name rows above
 * it, which keeps the matrix itself acyclic (checked by the unit test). A unit that is not listed
 * is an error: a new directory needs its row.
 */
export const LAYERS: Readonly<Record<string, readonly string[]>> = {
  // Shared types and helpers: typed errors, events, YAML positions, the envelope, atomic files.
  core: [],
  // Edges: wire codecs and protocol I/O.
  'tls/wire': ['core'],
  dns: ['core'],
  mime: ['core'],
  'smtp/protocol': ['core'],
  // The TLS engine: certificates, TCP connect, full handshakes, STARTTLS dialects, probing.
  'tls/cert': ['core', 'tls/wire'],
  'tls/connect': ['core'],
  'tls/session': ['core', 'tls/wire', 'tls/cert'],
  'tls/handshake': ['core', 'tls/wire', 'tls/cert', 'tls/connect', 'tls/session'],
  'tls/starttls': ['core', 'tls/wire', 'tls/cert', 'tls/connect', 'tls/session', 'tls/handshake'],
  'tls/probe': ['core', ...TLS_ENGINE],
  // The hardened HTTPS client (MTA-STS policies, TLS-RPT reports) over the injected DNS client.
  net: ['core', 'dns', ...TLS_ENGINE],
  // SMTP client and server sessions over the engine.
  'smtp/client': ['core', 'smtp/protocol', ...TLS_ENGINE],
  'smtp/server': ['core', 'smtp/protocol', ...TLS_ENGINE],
  // Decisions: profiles, facts × profile → verdict, what the client offers, the per-host policy.
  'tls/profiles': ['core', 'tls/wire'],
  'tls/evaluate': ['core', 'tls/wire', 'tls/cert', 'tls/session', 'tls/profiles'],
  'tls/offer': ['core', 'tls/wire', 'tls/handshake', 'tls/profiles'],
  policy: ['core', 'dns', 'net', 'tls/wire', 'tls/cert', 'tls/session', 'tls/profiles', 'tls/evaluate', 'tls/offer'],
  config: ['core', 'dns', 'tls/wire', 'tls/cert', 'tls/profiles', 'policy'],
  // Products.
  queue: ['core', 'mime', 'smtp/protocol'],
  report: ['core', 'dns', 'net', 'mime', 'smtp/protocol', 'policy', 'queue'],
  e2e: ['core', 'dns', 'net', 'mime', 'tls/cert', 'policy'],
  vault: ['core', 'config'],
  delivery: [...EDGES, ...TLS_ALL, 'smtp/client', 'policy', 'queue', 'report', 'e2e'],
  scan: [...EDGES, ...TLS_ALL, 'policy', 'report'],
  testbed: [...EDGES, ...TLS_ENGINE, 'tls/profiles', 'smtp/server'],
  tunnel: [...EDGES, ...TLS_ALL, 'policy', 'config', 'vault'],
  gateway: [
    ...EDGES,
    ...TLS_ALL,
    'smtp/client',
    'smtp/server',
    'policy',
    'config',
    'queue',
    'report',
    'e2e',
    'vault',
    'delivery',
  ],
  // Thin: parse arguments, call one function, print.
  cli: [
    ...EDGES,
    ...TLS_ALL,
    'smtp/client',
    'smtp/server',
    'policy',
    'config',
    'queue',
    'report',
    'e2e',
    'vault',
    'delivery',
    'scan',
    'testbed',
    'tunnel',
    'gateway',
  ],
};

/** Files outside src/ that src/ may import: the package's own metadata (its version). */
const OUTSIDE_SRC_ALLOWED: ReadonlySet<string> = new Set(['package.json']);

/** Why `fromUnit` may not import `toUnit`, or null when it may. */
export function layerViolation(fromUnit: string, toUnit: string): string | null {
  if (fromUnit === toUnit) return null;
  const allowed = LAYERS[fromUnit];
  if (allowed === undefined)
    return `src/${fromUnit} has no row in the layer matrix (add it to LAYERS in scripts/check-layers.ts)`;
  if (LAYERS[toUnit] === undefined)
    return `src/${toUnit} has no row in the layer matrix (add it to LAYERS in scripts/check-layers.ts)`;
  if (allowed.includes(toUnit)) return null;
  return `src/${fromUnit} may not import src/${toUnit} (it may import: ${allowed.length ? allowed.join(', ') : 'nothing'})`;
}

/** The relative module specifiers a source text imports or re-exports, in order (type-only ones included). */
export function importsOf(text: string): string[] {
  return ts
    .preProcessFile(text, true, true)
    .importedFiles.map((f) => f.fileName)
    .filter((s) => s.startsWith('.'));
}

/** file → the files it imports; paths relative to the project root, with '/' separators. */
export type ImportGraph = ReadonlyMap<string, readonly string[]>;

function walk(dir: string, out: string[]): void {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name === 'node_modules' || e.name.startsWith('.')) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(p);
  }
}

/** Reads every .ts file under `dirs` of `root` into an import graph (only relative specifiers). */
export function readGraph(root: string, dirs: readonly string[] = ['src', 'test', 'bench', 'scripts']): ImportGraph {
  const files: string[] = [];
  for (const d of dirs) {
    try {
      walk(join(root, d), files);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }
  const graph = new Map<string, string[]>();
  const rel = (p: string): string => relative(root, p).split(sep).join('/');
  for (const f of files) {
    const deps = importsOf(readFileSync(f, 'utf8')).map((s) => rel(resolve(dirname(f), s)));
    graph.set(rel(f), deps);
  }
  return graph;
}

/** Import cycles as file paths, each starting at its smallest path and closing on it (Tarjan SCCs). */
export function findCycles(graph: ImportGraph): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const components: string[][] = [];
  let next = 0;
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v) ?? 0, low.get(w) ?? 0));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v) ?? 0, index.get(w) ?? 0));
    }
    if (low.get(v) === index.get(v)) {
      const comp: string[] = [];
      let w: string | undefined;
      do {
        w = stack.pop();
        if (w === undefined) break;
        onStack.delete(w);
        comp.push(w);
      } while (w !== v);
      const selfLoop = comp.length === 1 && (graph.get(v) ?? []).includes(v);
      if (comp.length > 1 || selfLoop) components.push(comp);
    }
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  // One concrete cycle per component: a shortest path from its smallest file back to itself.
  return components.map((comp) => {
    const members = new Set(comp);
    const start = [...comp].sort()[0] ?? '';
    const prev = new Map<string, string>();
    const queue = [start];
    for (let i = 0; i < queue.length; i++) {
      const v = queue[i] ?? '';
      for (const w of graph.get(v) ?? []) {
        if (!members.has(w)) continue;
        if (w === start) {
          const path = [start];
          for (let u: string | undefined = v; u !== undefined && u !== start; u = prev.get(u)) path.splice(1, 0, u);
          return [...path, start];
        }
        if (!prev.has(w)) {
          prev.set(w, v);
          queue.push(w);
        }
      }
    }
    return [start, start];
  });
}

/** Every matrix violation and every cycle in `graph`, one readable line each. */
export function checkGraph(graph: ImportGraph): string[] {
  const problems: string[] = [];
  for (const [file, deps] of [...graph].sort(([a], [b]) => a.localeCompare(b))) {
    if (!file.startsWith('src/')) continue;
    const from = unitOf(file.slice(4));
    for (const dep of deps) {
      if (!dep.startsWith('src/')) {
        if (!OUTSIDE_SRC_ALLOWED.has(dep)) problems.push(`${file}: imports ${dep}, outside src/`);
        continue;
      }
      const why = layerViolation(from, unitOf(dep.slice(4)));
      if (why !== null) problems.push(`${file}: imports ${dep}: ${why}`);
    }
  }
  for (const cycle of findCycles(graph)) problems.push(`import cycle: ${cycle.join(' → ')}`);
  return problems;
}

/**
 * The matrix as an ESLint rule (`postern/layers` in eslint.config.js), so an editor marks an
 * upward import where it is written. Cycles need the whole graph and stay with the script.
 */
export const layersRule: Rule.RuleModule = {
  meta: {
    type: 'problem',
    docs: { description: 'src/ layers import only the layers below them (scripts/check-layers.ts LAYERS)' },
    schema: [],
  },
  create(context) {
    const file = relative(context.cwd, context.filename).split(sep).join('/');
    if (!file.startsWith('src/')) return {};
    const from = unitOf(file.slice(4));
    const check = (node: Rule.Node, source: unknown): void => {
      if (typeof source !== 'string' || !source.startsWith('.')) return;
      const target = relative(context.cwd, resolve(dirname(context.filename), source))
        .split(sep)
        .join('/');
      const why = target.startsWith('src/')
        ? layerViolation(from, unitOf(target.slice(4)))
        : OUTSIDE_SRC_ALLOWED.has(target)
          ? null
          : `imports ${target}, outside src/`;
      if (why !== null) context.report({ node, message: why });
    };
    return {
      ImportDeclaration: (node) => check(node, node.source.value),
      ExportNamedDeclaration: (node) => check(node, node.source?.value),
      ExportAllDeclaration: (node) => check(node, node.source.value),
      ImportExpression: (node) => check(node, node.source.type === 'Literal' ? node.source.value : undefined),
    };
  },
};

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = resolve(process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), '..'));
  const problems = checkGraph(readGraph(root));
  for (const p of problems) process.stderr.write(`${p}\n`);
  if (problems.length > 0) {
    process.stderr.write(
      `check-layers: ${problems.length} problem(s); the matrix is LAYERS in scripts/check-layers.ts\n`,
    );
    process.exitCode = 1;
  }
}
