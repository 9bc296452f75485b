/**
 * Typed errors with stable codes. Every error a user can see carries a machine-readable `code`,
 * a one-line message, and optionally a `hint` saying what to do about it; the CLI prints those and
 * never a stack trace (DEVELOPERS.md: "never a stack trace to a user").
 */
export class PosternError extends Error {
  readonly code: string;
  readonly hint: string | undefined;
  constructor(code: string, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PosternError';
    this.code = code;
    this.hint = options.hint;
  }
}

/** Malformed or unexpected bytes from a peer. Never fatal to the process. */
export class WireError extends PosternError {
  constructor(code: string, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(code, message, options);
    this.name = 'WireError';
  }
}

/** Network-level failures (connect, timeout, reset), with codes such as `net-timeout`. */
export class NetError extends PosternError {
  constructor(code: string, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(code, message, options);
    this.name = 'NetError';
  }
}

/** Bad user input on the command line or in a config file. */
export class UsageError extends PosternError {
  constructor(message: string, options: { hint?: string; cause?: unknown } = {}) {
    super('usage', message, options);
    this.name = 'UsageError';
  }
}

export function isPosternError(e: unknown): e is PosternError {
  return e instanceof PosternError;
}
