/**
 * BSI TR-02102-2 cipher-suite allow-list (provisional: rebuilt from tools that encode the
 * guideline, see ../shared/STANDARDS.md; the full profile engine lands with issue 3).
 */

/** BSI TR-02102-2 Table 1: TLS 1.2 suites with perfect forward secrecy. */
export const BSI_TLS12_TABLE1: ReadonlySet<number> = new Set([
  // ECDHE_ECDSA
  0xc023, 0xc024, 0xc02b, 0xc02c, 0xc0ac, 0xc0ad,
  // ECDHE_RSA
  0xc027, 0xc028, 0xc02f, 0xc030,
  // DHE_DSS
  0x0040, 0x006a, 0x00a2, 0x00a3,
  // DHE_RSA
  0x0067, 0x006b, 0x009e, 0x009f, 0xc09e, 0xc09f,
]);

/** BSI TR-02102-2 TLS 1.3 suites: AES-GCM and AES-CCM; no ChaCha20, no CCM_8. */
export const BSI_TLS13: ReadonlySet<number> = new Set([0x1301, 0x1302, 0x1304]);

/** Is `code` allowed by BSI TR-02102-2 at `version`? Only TLS 1.2 and 1.3 can be compliant. */
export function bsiAllowsSuite(version: string, code: number): boolean {
  if (version === 'TLSv1.3') return BSI_TLS13.has(code);
  if (version === 'TLSv1.2') return BSI_TLS12_TABLE1.has(code);
  return false;
}
