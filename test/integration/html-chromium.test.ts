/**
 * The HTML report of a real scan (three testbed servers: one good, two broken) loaded in Debian's
 * headless Chromium: the DOM Chromium builds must hold the verdict table with one row per endpoint
 * and the right verdict classes, and the screenshot must show the green and red verdict badges in
 * the table's verdict column, row by row. No network: a file:// page whose CSP forbids fetches,
 * Chromium's background services off and every host name mapped to NOTFOUND.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { renderHtml } from '../../src/scan/render-html.ts';
import { scanEndpoint } from '../../src/scan/scan.ts';
import type { EndpointReport, ScanReport } from '../../src/scan/scan.ts';
import { parseTarget } from '../../src/scan/target.ts';
import { startTestbed } from '../../src/testbed/index.ts';
import type { Testbed } from '../../src/testbed/index.ts';
import { peerSkipReason } from './peers/require.ts';

const CHROMIUM = '/usr/bin/chromium';
const SERVERS = ['smtp-good', 'smtp-shame', 'smtp-no-starttls'] as const;
const EXPECTED = ['verdict-ok', 'verdict-fail', 'verdict-fail'];
const WIDTH = 1280;
const HEIGHT = 1000;
// The verdict badge fills (render-html.ts .badge-ok / .badge-fail), sRGB.
const GREEN: Rgb = [0x1a, 0x7f, 0x37];
const RED: Rgb = [0xcf, 0x22, 0x2e];
// thead background (--head in light mode).
const HEAD: Rgb = [0xee, 0xf1, 0xf4];

type Rgb = readonly [number, number, number];

const skip = peerSkipReason(existsSync(CHROMIUM), 'chromium');

/** Runs Chromium once in its own process group; on timeout that group (ours) is killed. */
function chromium(
  userDataDir: string,
  args: readonly string[],
  timeoutMs = 60_000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const flags = [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--disable-extensions',
    '--host-resolver-rules=MAP * ~NOTFOUND',
    '--force-color-profile=srgb',
    '--force-device-scale-factor=1',
    '--hide-scrollbars',
    `--user-data-dir=${userDataDir}`,
    ...args,
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(CHROMIUM, flags, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    const timer = setTimeout(() => {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    }, timeoutMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
  });
}

interface Image {
  width: number;
  height: number;
  px(x: number, y: number): Rgb;
}

/** Minimal PNG decoder: 8-bit RGB/RGBA, non-interlaced (what Chromium writes). RFC 2083 §6, §9. */
function decodePng(buf: Buffer): Image {
  assert.deepEqual([...buf.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'PNG signature');
  let off = 8;
  let width = 0;
  let height = 0;
  let channels = 0;
  const idat: Buffer[] = [];
  while (off + 8 <= buf.length) {
    const len = buf.readUInt32BE(off);
    const type = buf.toString('latin1', off + 4, off + 8);
    const data = buf.subarray(off + 8, off + 8 + len);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      const [depth, colour, , , interlace] = [data[8], data[9], data[10], data[11], data[12]];
      assert.equal(depth, 8, 'bit depth');
      assert.equal(interlace, 0, 'interlace');
      assert.ok(colour === 2 || colour === 6, `colour type ${colour}`);
      channels = colour === 6 ? 4 : 3;
    } else if (type === 'IDAT') idat.push(data);
    else if (type === 'IEND') break;
    off += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const pix = Buffer.alloc(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const row = y * stride;
    for (let i = 0; i < stride; i++) {
      const a = i >= channels ? (pix[row + i - channels] ?? 0) : 0;
      const b = y > 0 ? (pix[row - stride + i] ?? 0) : 0;
      const c = y > 0 && i >= channels ? (pix[row - stride + i - channels] ?? 0) : 0;
      let pred = 0;
      if (filter === 1) pred = a;
      else if (filter === 2) pred = b;
      else if (filter === 3) pred = (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c;
        const pa = Math.abs(p - a);
        const pb = Math.abs(p - b);
        const pc = Math.abs(p - c);
        pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      } else assert.equal(filter, 0, `filter type ${filter}`);
      pix[row + i] = ((line[i] ?? 0) + pred) & 0xff;
    }
  }
  return {
    width,
    height,
    px(x, y) {
      const i = y * stride + x * channels;
      return [pix[i] ?? 0, pix[i + 1] ?? 0, pix[i + 2] ?? 0];
    },
  };
}

function near(p: Rgb, q: Rgb, tol = 3): boolean {
  return Math.abs(p[0] - q[0]) <= tol && Math.abs(p[1] - q[1]) <= tol && Math.abs(p[2] - q[2]) <= tol;
}

/** The first pixel row holding a run of `colour` at least `minRun` wide: [y, x0, x1]. */
function findRun(img: Image, colour: Rgb, minRun: number): [number, number, number] | null {
  for (let y = 0; y < img.height; y++) {
    let start = -1;
    for (let x = 0; x <= img.width; x++) {
      const hit = x < img.width && near(img.px(x, y), colour, 1);
      if (hit && start < 0) start = x;
      if (!hit && start >= 0) {
        if (x - start >= minRun) return [y, start, x - 1];
        start = -1;
      }
    }
  }
  return null;
}

let testbed: Testbed | undefined;
let work = '';
let report: ScanReport;

describe('HTML report in headless Chromium', { skip }, () => {
  before(async () => {
    testbed = await startTestbed({ basePort: 0, only: [...SERVERS] });
    const byId = new Map(testbed.manifest.servers.map((s) => [s.id, s]));
    const targets: EndpointReport[] = [];
    for (const id of SERVERS) {
      const s = byId.get(id);
      assert.ok(s, `testbed server ${id}`);
      const t = parseTarget(s.url);
      targets.push(
        await scanEndpoint(
          { ...t, address: s.address },
          { name: s.hostname, ca: [testbed.manifest.caPem], timeoutMs: 5000 },
        ),
      );
    }
    report = { schemaVersion: 1, profile: 'bsi', generatedAt: new Date().toISOString(), targets };
    work = await mkdtemp(join(tmpdir(), 'postern-html-'));
    await writeFile(join(work, 'report.html'), renderHtml(report, { generatedBy: 'postern test' }));
  });
  after(async () => {
    await testbed?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('scans the three servers to the verdicts the page must show', () => {
    assert.deepEqual(
      report.targets.map((t) => t.compliant),
      [true, false, false],
    );
  });

  it('Chromium builds a DOM with the verdict table: one row per endpoint, right classes', async () => {
    const profile = await mkdtemp(join(work, 'profile-dom-'));
    const r = await chromium(profile, ['--dump-dom', `file://${join(work, 'report.html')}`]);
    assert.equal(r.code, 0, r.stderr.slice(-2000));
    const dom = r.stdout;
    const table = /<table id="verdicts">([\s\S]*?)<\/table>/.exec(dom)?.[1];
    assert.ok(table, 'verdict table in the rendered DOM');
    const body = /<tbody>([\s\S]*?)<\/tbody>/.exec(table)?.[1] ?? '';
    const rows = body.match(/<tr\b[^>]*>[\s\S]*?<\/tr>/g) ?? [];
    assert.equal(rows.length, SERVERS.length);
    const classes = rows.map((row) => /class="verdict (verdict-ok|verdict-fail)"/.exec(row)?.[1]);
    assert.deepEqual(classes, EXPECTED);
    // Each row links to its endpoint's section, which exists in the DOM.
    rows.forEach((row, i) => {
      assert.match(row, new RegExp(`href="#ep-${i + 1}"`));
      assert.match(dom, new RegExp(`<section class="endpoint [^"]*" id="ep-${i + 1}">`));
    });
    assert.doesNotMatch(dom, /<script/i);
  });

  it('the screenshot shows a green then two red verdict badges in the table', async () => {
    const profile = await mkdtemp(join(work, 'profile-shot-'));
    const png = join(work, 'report.png');
    const r = await chromium(profile, [
      `--window-size=${WIDTH},${HEIGHT}`,
      `--screenshot=${png}`,
      `file://${join(work, 'report.html')}`,
    ]);
    assert.equal(r.code, 0, r.stderr.slice(-2000));
    const img = decodePng(await readFile(png));
    assert.equal(img.width, WIDTH);
    assert.equal(img.height, HEIGHT);

    // The verdict table's header row is the first wide band of the thead colour.
    const head = findRun(img, HEAD, 600);
    assert.ok(head, 'verdict table header visible');
    const [headY, x0, x1] = head;
    // The verdict column is the table's right-most ~15%; walk down it and collect badge bands.
    const colFrom = x1 - Math.round((x1 - x0) * 0.15);
    const bands: Array<{ colour: 'green' | 'red'; top: number; bottom: number }> = [];
    for (let y = headY; y < img.height && bands.length < 4; y++) {
      let colour: 'green' | 'red' | null = null;
      for (let x = colFrom; x <= x1 && colour === null; x++) {
        const p = img.px(x, y);
        if (near(p, GREEN)) colour = 'green';
        else if (near(p, RED)) colour = 'red';
      }
      const last = bands[bands.length - 1];
      if (colour && last && last.colour === colour && last.bottom === y - 1) last.bottom = y;
      else if (colour) bands.push({ colour, top: y, bottom: y });
    }
    const rows = bands.slice(0, 3);
    assert.deepEqual(
      rows.map((b) => b.colour),
      ['green', 'red', 'red'],
      JSON.stringify(bands),
    );
    // Badges, not stray lines: each band is badge-high, and they sit one table row apart.
    for (const b of rows) assert.ok(b.bottom - b.top >= 12, `badge height ${JSON.stringify(b)}`);
    const gap1 = (rows[1]?.top ?? 0) - (rows[0]?.top ?? 0);
    const gap2 = (rows[2]?.top ?? 0) - (rows[1]?.top ?? 0);
    assert.ok(gap1 > 20 && gap1 < 90 && gap2 > 20 && gap2 < 90, `row pitch ${gap1}, ${gap2}`);
    assert.ok((rows[0]?.top ?? 0) - headY < 80, 'first badge right under the header');
  });
});
