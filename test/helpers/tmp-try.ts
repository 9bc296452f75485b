import { makePki, makeCert, resignWithMd5 } from './certs.ts';
import { X509Certificate } from 'node:crypto';
import tls from 'node:tls';
const t0 = Date.now();
const { root, intermediate, leaf } = await makePki();
console.log('pki ms', Date.now() - t0);
const l = new X509Certificate(leaf.der), i = new X509Certificate(intermediate.der), r = new X509Certificate(root.der);
console.log(l.checkIssued(i), l.verify(i.publicKey), i.checkIssued(r), i.verify(r.publicKey), l.signatureAlgorithm, l.signatureAlgorithmOid, l.subjectAltName, l.ca, i.ca);
const rsaRoot = await makeCert({ subject: 'CN=rsa root', key: 'rsa-2048', isCA: true });
const sha1 = await makeCert({ subject: 'CN=sha1', key: 'rsa-1024', issuer: rsaRoot, hash: 'SHA-1', dnsNames: ['a.test'] });
const s = new X509Certificate(sha1.der); const rr = new X509Certificate(rsaRoot.der);
console.log(s.signatureAlgorithm, s.verify(rr.publicKey), s.publicKey.asymmetricKeyDetails);
const rsaLeaf = await makeCert({ subject: 'CN=md5', key: 'rsa-2048', issuer: rsaRoot });
const md5 = new X509Certificate(resignWithMd5(rsaLeaf, rsaRoot.keyPem));
console.log(md5.signatureAlgorithm, md5.verify(rr.publicKey), md5.checkIssued(rr));
// TLS 1.3 server
const srv = tls.createServer({ key: leaf.keyPem, cert: leaf.pem + intermediate.pem }, (s) => { s.end('hi'); });
await new Promise<void>((res) => srv.listen(0, '127.0.0.1', res));
const port = (srv.address() as {port:number}).port;
for (const curve of ['X25519MLKEM768', 'X25519', 'P-256']) {
const c = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ecdhCurve: curve });
await new Promise((res) => c.once('secureConnect', res));
console.log(c.getProtocol(), c.getCipher(), c.getEphemeralKeyInfo(), (c as any).authorizationError);
const pc = c.getPeerCertificate(true); console.log(pc.subject, pc.issuerCertificate?.subject);
c.destroy();
}
srv.close();
