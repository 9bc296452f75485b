/** SMTP protocol primitives (pure, no sockets): replies, command lines, ESMTP parameters. */
export { formatReply, formatError } from './reply.ts';
export type { Reply, ReplyError } from './reply.ts';
export {
  parseCommand,
  splitPathAndParams,
  commandLineLimit,
  MAX_COMMAND_LINE,
  MAX_MAIL_RCPT_LINE,
  MAX_AUTH_LINE,
} from './command.ts';
export type { ParsedCommand } from './command.ts';
export { parseMailParams, parseRcptParams, decodeXtext, encodeXtext } from './params.ts';
export type { MailParams, RcptParams } from './params.ts';
