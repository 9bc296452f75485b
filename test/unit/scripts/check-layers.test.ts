/** The layer matrix and import-cycle check that `npm run lint` runs (scripts/check-layers.ts). */
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  checkGraph,
  findCycles,
  importsOf,
  LAYERS,
  layerViolation,
  readGraph,
  unitOf,
} from '../../../scripts/check-layers.ts';
import type { ImportGraph } from '../../../scripts/check-layers.ts';

/** A graph from file texts, the way readGraph builds it from disk. */
function graphOf(files: Record<string, string>): ImportGraph {
  const g = new Map<string, string[]>();
  for (const [file, text] of Object.entries(files)) {
    const dir = dirname(file);
    g.set(
      file,
      importsOf(text).map((s) => join(dir, s)),
    );
  }
  return g;
}

describe('check-layers', () => {
  test('every kind of import is an edge: type-only, re-exports, side effects, dynamic, import types', () => {
    const text = [
      "import type { A } from './a.ts';",
      "import { type B } from './b.ts';",
      "export type { C } from './c.ts';",
      "export * from './d.ts';",
      "import './e.ts';",
      "const f = () => import('./f.ts');",
      "type G = import('./g.ts').G;",
      "// import x from './comment.ts';",
      "import { readFile } from 'node:fs/promises';",
    ].join('\n');
    assert.deepEqual(importsOf(text), ['./a.ts', './b.ts', './c.ts', './d.ts', './e.ts', './f.ts', './g.ts']);
  });

  test('a cycle made only of type imports is found and printed as a path', () => {
    const g = graphOf({
      'src/scan/a.ts': "import type { B } from './b.ts';",
      'src/scan/b.ts': "export type { C } from './c.ts';",
      'src/scan/c.ts': "import type { A } from './a.ts';",
      'src/scan/d.ts': "import { a } from './a.ts';",
    });
    assert.deepEqual(findCycles(g), [['src/scan/a.ts', 'src/scan/b.ts', 'src/scan/c.ts', 'src/scan/a.ts']]);
    assert.deepEqual(checkGraph(g), ['import cycle: src/scan/a.ts → src/scan/b.ts → src/scan/c.ts → src/scan/a.ts']);
  });

  test('a file importing itself is a cycle; a diamond is not', () => {
    assert.deepEqual(findCycles(graphOf({ 'src/core/x.ts': "import { y } from './x.ts';" })), [
      ['src/core/x.ts', 'src/core/x.ts'],
    ]);
    const diamond = graphOf({
      'src/core/a.ts': "import './b.ts';\nimport './c.ts';",
      'src/core/b.ts': "import './d.ts';",
      'src/core/c.ts': "import './d.ts';",
      'src/core/d.ts': '',
    });
    assert.deepEqual(checkGraph(diamond), []);
  });

  test('upward imports are refused, type-only ones too; downward ones pass', () => {
    const g = graphOf({
      'src/tls/profiles/custom.ts': "import type { Located } from '../../config/yaml-errors.ts';",
      'src/smtp/protocol/params.ts': "import type { RecipientDsn } from '../../queue/types.ts';",
      'src/policy/resolve.ts': "import type { ResultType } from '../report/tlsrpt/aggregate.ts';",
      'src/scan/scan.ts': "import { suiteByCode } from '../tls/wire/suites.ts';",
      'src/cli/main.ts': "import { startGateway } from '../gateway/gateway.ts';",
    });
    const problems = checkGraph(g);
    assert.equal(problems.length, 3, problems.join('\n'));
    assert.match(problems[0] ?? '', /^src\/policy\/resolve\.ts: .* src\/policy may not import src\/report/);
    assert.match(
      problems[1] ?? '',
      /^src\/smtp\/protocol\/params\.ts: .* src\/smtp\/protocol may not import src\/queue/,
    );
    assert.match(
      problems[2] ?? '',
      /^src\/tls\/profiles\/custom\.ts: .* src\/tls\/profiles may not import src\/config/,
    );
  });

  test('src/ may read package.json (the version) but nothing else outside src/', () => {
    const g = graphOf({
      'src/core/version.ts': "import pkg from '../../package.json' with { type: 'json' };",
      'src/gateway/x.ts': "import { sink } from '../../test/helpers/smtp-sink.ts';",
    });
    assert.deepEqual(checkGraph(g), ['src/gateway/x.ts: imports test/helpers/smtp-sink.ts, outside src/']);
  });

  test('units: tls/ and smtp/ by their parts, everything else by top-level directory', () => {
    assert.equal(unitOf('tls/wire/suites.ts'), 'tls/wire');
    assert.equal(unitOf('tls/evaluate.ts'), 'tls/evaluate');
    assert.equal(unitOf('smtp/protocol/reply-class.ts'), 'smtp/protocol');
    assert.equal(unitOf('gateway/users/watch.ts'), 'gateway');
    assert.equal(unitOf('core/events.ts'), 'core');
  });

  test('a directory without a row in the matrix is reported, not silently allowed', () => {
    assert.match(layerViolation('newthing', 'core') ?? '', /src\/newthing has no row/);
    assert.match(layerViolation('core', 'newthing') ?? '', /src\/newthing has no row/);
    assert.equal(layerViolation('newthing', 'newthing'), null);
  });

  test('the matrix is bottom-up: each row names only known rows listed above it (so it has no cycle)', () => {
    const seen = new Set<string>();
    for (const [unit, allowed] of Object.entries(LAYERS)) {
      for (const a of allowed) assert.ok(seen.has(a), `${unit} may import ${a}, which is not listed above it`);
      seen.add(unit);
    }
    // The promises of the architecture page: the engine and the decisions never reach products.
    for (const low of ['core', 'tls/wire', 'tls/evaluate', 'tls/profiles', 'dns', 'smtp/protocol', 'policy'])
      for (const product of ['scan', 'gateway', 'delivery', 'queue', 'testbed', 'report', 'cli', 'config'])
        assert.notEqual(layerViolation(low, product), null, `${low} → ${product}`);
  });

  test('the repository keeps to the matrix and has no import cycle', () => {
    const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
    assert.deepEqual(checkGraph(readGraph(root)), []);
  });
});
