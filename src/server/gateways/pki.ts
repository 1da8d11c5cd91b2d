/**
 * Gateway PKI: pure certificate operations, no storage. The identity encoding and the gateway's
 * key/CSR live in src/protocol/ (identity.ts, csr.ts) because the agent needs them too.
 *
 * Revocation model: certificates are long-lived (1 year) but revocable. The platform stores each
 * gateway's current certificate fingerprint; the tunnel hub's `identify` callback compares the
 * presented fingerprint with it, so deleting a gateway or re-enrolling it invalidates the old
 * certificate at the next handshake, and `TunnelHub.disconnect()` drops a live session at once.
 */
// Side effect first: @peculiar/x509 throws at load time without it.
import '../../protocol/reflect-shim.js';
import { randomBytes, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { EC_KEY, EC_SIGN, exportKeyPem, generateKeyPair } from '../../protocol/csr.js';
import { fingerprintOfDer, gatewayIdentityUri, orgCaIdentityUri } from '../../protocol/identity.js';

export { createGatewayKeyAndCsr, type GatewayKeyAndCsr } from '../../protocol/csr.js';
export {
  fingerprintOfDer,
  fingerprintOfPem,
  gatewayIdentityUri,
  orgCaIdentityUri,
  parseGatewayCert,
  parseOrgCa,
  verifyIssuedBy,
  type GatewayCertInfo,
  type GatewayIdentity,
} from '../../protocol/identity.js';

type CryptoKey = webcrypto.CryptoKey;

const DAY_MS = 86_400_000;
// Tolerate modest clock skew between the platform and gateways.
const BACKDATE_MS = 5 * 60_000;
const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

export interface KeyAndCert {
  certPem: string;
  keyPem: string;
}

async function importSigningKey(keyPem: string): Promise<CryptoKey> {
  const der = x509.PemConverter.decodeFirst(keyPem);
  return webcrypto.subtle.importKey('pkcs8', der, EC_KEY, false, ['sign']);
}

function serialNumber(): string {
  const bytes = randomBytes(16);
  // Positive INTEGER: clear the top bit so DER does not need a leading zero.
  bytes[0] = (bytes[0] ?? 0) & 0x7f;
  return bytes.toString('hex');
}

function validity(days: number, now = Date.now()): { notBefore: Date; notAfter: Date } {
  return { notBefore: new Date(now - BACKDATE_MS), notAfter: new Date(now + days * DAY_MS) };
}

function assertId(kind: string, value: string): void {
  if (!ID_PATTERN.test(value)) throw new Error(`invalid ${kind} for a certificate: ${value}`);
}

async function createCa(
  commonName: string,
  organization: string,
  years: number,
  identityUri?: string,
): Promise<KeyAndCert> {
  const keys = await generateKeyPair();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: [{ CN: [commonName] }, { O: [organization] }],
    ...validity(years * 365),
    signingAlgorithm: EC_SIGN,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ...(identityUri
        ? [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: identityUri }], false)]
        : []),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: await exportKeyPem(keys.privateKey) };
}

/**
 * A per-org gateway CA: EC P-256, self-signed, valid 10 years. It names its org in a URI SAN so
 * the tunnel can check that a gateway certificate was issued by its own org's CA.
 */
export async function createOrgCa(orgId: string): Promise<KeyAndCert> {
  assertId('org id', orgId);
  return createCa(`gatepool gateway CA ${orgId}`, orgId, 10, orgCaIdentityUri(orgId));
}

/** The platform's tunnel-server CA (gateways trust only this for the tunnel). */
export function createTunnelServerCa(): Promise<KeyAndCert> {
  return createCa('gatepool tunnel server CA', 'gatepool', 10);
}

export interface ServerCertOptions {
  /** Extra DNS names or IP literals besides localhost / 127.0.0.1 / ::1. */
  hostnames?: string[];
  validityDays?: number;
}

/** A tunnel server certificate issued by the tunnel-server CA. */
export async function createTunnelServerCert(
  ca: KeyAndCert,
  options: ServerCertOptions = {},
): Promise<KeyAndCert> {
  const caCert = new x509.X509Certificate(ca.certPem);
  const keys = await generateKeyPair();
  const names = new Set(['localhost', '127.0.0.1', '::1', ...(options.hostnames ?? [])]);
  const san = [...names].map((value) => ({
    type: (isIpLiteral(value) ? 'ip' : 'dns') as 'ip' | 'dns',
    value,
  }));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: [{ CN: ['gatepool tunnel'] }],
    issuer: caCert.subject,
    ...validity(options.validityDays ?? 825),
    signingAlgorithm: EC_SIGN,
    publicKey: keys.publicKey,
    signingKey: await importSigningKey(ca.keyPem),
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
      new x509.SubjectAlternativeNameExtension(san, false),
      await x509.AuthorityKeyIdentifierExtension.create(caCert, false),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: await exportKeyPem(keys.privateKey) };
}

function isIpLiteral(value: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(value) || value.includes(':');
}

export interface SignGatewayCsrParams {
  ca: KeyAndCert;
  csrPem: string;
  orgId: string;
  gatewayId: string;
  validityDays?: number;
  now?: number;
}

export interface SignedGatewayCert {
  certPem: string;
  fingerprint256: string;
  notAfter: Date;
}

/**
 * Issues a gateway client certificate (1 year by default) for the CSR's public key. Everything
 * else in the CSR (subject, requested extensions) is ignored: identity comes from the platform.
 */
export async function signGatewayCsr(params: SignGatewayCsrParams): Promise<SignedGatewayCert> {
  assertId('org id', params.orgId);
  assertId('gateway id', params.gatewayId);
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(params.csrPem);
  } catch {
    throw new CsrError('the CSR is not a valid PEM PKCS#10 request');
  }
  if (!(await csr.verify())) throw new CsrError('the CSR signature does not verify');
  const algorithm = csr.publicKey.algorithm as webcrypto.EcKeyAlgorithm;
  if (algorithm.name !== 'ECDSA' || algorithm.namedCurve !== 'P-256') {
    throw new CsrError('the CSR key must be EC P-256');
  }
  const caCert = new x509.X509Certificate(params.ca.certPem);
  const { notBefore, notAfter } = validity(params.validityDays ?? 365, params.now);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: [{ CN: [params.gatewayId] }, { O: [params.orgId] }],
    issuer: caCert.subject,
    notBefore,
    notAfter,
    signingAlgorithm: EC_SIGN,
    publicKey: csr.publicKey,
    signingKey: await importSigningKey(params.ca.keyPem),
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth], false),
      new x509.SubjectAlternativeNameExtension(
        [{ type: 'url', value: gatewayIdentityUri(params.orgId, params.gatewayId) }],
        false,
      ),
      await x509.AuthorityKeyIdentifierExtension.create(caCert, false),
    ],
  });
  const certPem = cert.toString('pem');
  return { certPem, fingerprint256: fingerprintOfDer(Buffer.from(cert.rawData)), notAfter };
}

export class CsrError extends Error {
  override name = 'CsrError';
}
