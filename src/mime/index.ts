/**
 * mime/: building the messages postern writes itself — DSNs (queue/dsn.ts), TLS-RPT reports
 * (report/tlsrpt/send.ts), and the PGP/MIME and S/MIME containers of end-to-end encryption.
 * Small, pure, CRLF throughout; parsing mail is not done here.
 */
export { rfc5322Date } from './date.ts';
export { base64Lines, isAscii, quotedPrintable } from './encoding.ts';
export { foldList, mimeField, paramValue } from './header.ts';
export type { MimeParam } from './header.ts';
export { buildMultipart, newBoundary } from './multipart.ts';
export type { MimePart, Multipart, MultipartOptions } from './multipart.ts';
