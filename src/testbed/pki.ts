// moved: import from '../tls/cert/pki.ts' (shim kept while the issue 9 branches merge; delete after).
export { createCa, generateKeyPair, importKeyPair, issueCertificate, keyTypeLabel, loadCa } from '../tls/cert/pki.ts';
export type {
  CertificateAuthority,
  IssueOptions,
  IssuedCertificate,
  KeyPairMaterial,
  KeyType,
  SignatureHash,
} from '../tls/cert/pki.ts';
