/** Certificate analysis: facts per certificate, chain trust, RFC 9525 name matching. */
export { analyzeCertificate } from './analyze.ts';
export type { CertInfo, KeyType, SignatureHash } from './analyze.ts';
export { analyzeChain, parsePemBundle } from './chain.ts';
export type { AnalyzeChainOptions, ChainReport } from './chain.ts';
export { matchHostname } from './hostname.ts';
export { extractSentChain, parseCertificateMessage } from './sent-chain.ts';
export type { SentChainInput } from './sent-chain.ts';
