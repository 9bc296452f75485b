// moved: import from '../tls/offer.ts' (shim kept while the issue 9 branches merge; delete after).
export { tlsClientOffer } from '../tls/offer.ts';
export type { TlsClientOffer } from '../tls/offer.ts';
