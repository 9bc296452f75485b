/**
 * Strict YAML + zod validation with positions: every problem is reported as
 * `file:line:column: key.path: what is wrong` in one PosternError 'config-invalid'. Shared by the
 * gateway config (src/config/load.ts), the users file (src/gateway/users.ts) and custom grading
 * profiles (src/tls/profiles/custom.ts). Lives in core because both config and tls use it.
 */
import { readFile, stat } from 'node:fs/promises';
import { isMap, isScalar, LineCounter, parseDocument } from 'yaml';
import type { Document } from 'yaml';
import type { z } from 'zod';
import { PosternError } from './errors.ts';

/** A problem at a byte offset of the source text. */
export interface Located {
  offset: number;
  text: string;
}

/** A parsed YAML document and its line index. */
export interface YamlSource {
  label: string;
  doc: Document;
  lc: LineCounter;
}

/** Short description of a value for messages: `'text'`, `a list`, `a mapping`, `42`. */
export function show(v: unknown): string {
  if (typeof v === 'string') return `'${v}'`;
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint' ? String(v) : typeof v;
}

/** `['listen', 1, 'port']` → `listen[1].port`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let s = '';
  for (const p of path) s += typeof p === 'number' ? `[${p}]` : `${s === '' ? '' : '.'}${String(p)}`;
  return s;
}

/** Offset of the node at `path`, or of its nearest existing ancestor; `key` → the key itself. */
export function locate(doc: Document, path: readonly PropertyKey[], key?: string): number {
  if (key !== undefined) {
    const parent = path.length === 0 ? doc.contents : doc.getIn(path, true);
    if (isMap(parent)) {
      const pair = parent.items.find((p) => isScalar(p.key) && String(p.key.value) === key);
      const range = isScalar(pair?.key) ? pair.key.range : undefined;
      if (range) return range[0];
    }
  }
  for (let n = path.length; n >= 0; n--) {
    const node: unknown = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true);
    const range = (node as { range?: [number, number, number] } | null)?.range;
    if (range) return range[0];
  }
  return 0;
}

/** A problem located at `path` (or at the key `key` under it), with the path as a message prefix. */
export function locatedAt(doc: Document, path: readonly PropertyKey[], msg: string, key?: string): Located {
  const shown = key === undefined ? path : [...path, key];
  return { offset: locate(doc, path, key), text: `${shown.length === 0 ? '' : `${formatPath(shown)}: `}${msg}` };
}

/**
 * Optional special wording for some issues (e.g. "SSLv3 cannot be allowed"); return undefined to
 * fall back to the generic text.
 */
export type IssueOverride = (issue: z.core.$ZodIssue, doc: Document) => Located[] | undefined;

/** Turns one zod issue into located, readable problems. */
export function describeIssue(issue: z.core.$ZodIssue, doc: Document, override?: IssueOverride): Located[] {
  const special = override?.(issue, doc);
  if (special !== undefined) return special;
  const path = issue.path;
  const input: unknown = path.length === 0 ? doc.toJS() : doc.getIn(path);
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((k) => locatedAt(doc, path, `unknown key '${k}'`, k));
    case 'invalid_type':
      return [
        locatedAt(
          doc,
          path,
          input === undefined
            ? `missing (expected ${issue.expected})`
            : `expected ${issue.expected}, got ${show(input)}`,
        ),
      ];
    case 'invalid_key': {
      const key = String(path[path.length - 1]);
      const inner = issue.issues[0]?.message ?? 'invalid key';
      return [locatedAt(doc, path.slice(0, -1), `'${key}': ${inner}`, key)];
    }
    case 'invalid_value':
      return [locatedAt(doc, path, `expected one of ${issue.values.map(String).join(', ')}, got ${show(input)}`)];
    default:
      return [locatedAt(doc, path, issue.message)];
  }
}

/** The error for a set of located problems (sorted by position, at most 10 shown). */
export function invalidConfig(label: string, lc: LineCounter, located: Located[], hint: string): PosternError {
  const lines = [...located]
    .sort((a, b) => a.offset - b.offset)
    .slice(0, 10)
    .map((l) => {
      const { line, col } = lc.linePos(l.offset);
      return `${label}:${line}:${col}: ${l.text}`;
    });
  if (located.length > 10) lines.push(`(${located.length - 10} more)`);
  return new PosternError('config-invalid', lines.join('\n'), { hint });
}

/**
 * Parses YAML text (duplicate keys are errors, aliases bounded against "billion laughs").
 * Throws 'config-invalid' with the position of the first syntax errors.
 */
export function parseYaml(text: string, label: string, hint: string): YamlSource & { raw: unknown } {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw invalidConfig(
      label,
      lc,
      doc.errors.map((e) => ({ offset: e.pos[0], text: e.message.split('\n')[0] ?? e.message })),
      hint,
    );
  }
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    throw invalidConfig(label, lc, [{ offset: 0, text: e instanceof Error ? e.message : String(e) }], hint);
  }
  return { label, doc, lc, raw };
}

/**
 * Parses YAML text and validates it with `schema`; throws 'config-invalid' naming
 * file:line:column and the key path of each problem.
 */
export function validateYaml<S extends z.ZodType>(
  schema: S,
  text: string,
  label: string,
  opts: { hint: string; override?: IssueOverride },
): YamlSource & { value: z.output<S> } {
  const src = parseYaml(text, label, opts.hint);
  const parsed = schema.safeParse(src.raw);
  if (!parsed.success) {
    throw invalidConfig(
      label,
      src.lc,
      parsed.error.issues.flatMap((i) => describeIssue(i, src.doc, opts.override)),
      opts.hint,
    );
  }
  return { label: src.label, doc: src.doc, lc: src.lc, value: parsed.data };
}

/** YAML files postern reads (configs, profiles) are small; anything bigger is a mistake. */
export const MAX_YAML_FILE_BYTES = 1024 * 1024;

/**
 * Reads a YAML file with a size bound. Unreadable, non-regular or oversized files are
 * PosternError 'config-invalid': "<path>: cannot read <what>: <why>".
 */
export async function readYamlFile(path: string, what: string, hint?: string): Promise<string> {
  try {
    const st = await stat(path);
    if (!st.isFile()) throw new Error('not a regular file');
    if (st.size > MAX_YAML_FILE_BYTES) throw new Error(`larger than ${MAX_YAML_FILE_BYTES} bytes`);
    return await readFile(path, 'utf8');
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code ?? (e instanceof Error ? e.message : String(e));
    throw new PosternError('config-invalid', `${path}: cannot read ${what}: ${why}`, {
      ...(hint === undefined ? {} : { hint }),
      cause: e,
    });
  }
}
