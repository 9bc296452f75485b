/** The inbound SMTP server (submission and MX). */
export { createSmtpServer } from './server.ts';
export type {
  ListenerSpec,
  SessionInfo,
  HookReply,
  SmtpServerHooks,
  SmtpLimits,
  TlsMaterial,
  SmtpServerOptions,
  SmtpServerStats,
  SmtpServer,
} from './types.ts';
