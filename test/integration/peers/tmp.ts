import { mkdtemp, rm, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A temporary directory that removes itself (idempotently) when asked. */
export interface TempDir {
  readonly path: string;
  remove(): Promise<void>;
}

/**
 * Create a fresh directory under the OS temp dir. `mode` defaults to 0o755 because the peers'
 * unprivileged daemons (postfix, dovenull) must be able to traverse it; mkdtemp gives 0o700.
 */
export async function makeTempDir(prefix: string, mode = 0o755): Promise<TempDir> {
  const path = await mkdtemp(join(tmpdir(), `postern-${prefix}-`));
  await chmod(path, mode);
  let removed = false;
  return {
    path,
    async remove() {
      if (removed) return;
      removed = true;
      await rm(path, { recursive: true, force: true, maxRetries: 3 });
    },
  };
}

/** Run `fn` with a temp dir that is removed afterwards, whether `fn` throws or not. */
export async function withTempDir<T>(prefix: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await makeTempDir(prefix);
  try {
    return await fn(dir.path);
  } finally {
    await dir.remove();
  }
}
