/**
 * Gateway certificate identity, shared by the tunnel (which reads it from peers) and the issuing
 * CA. Needs only node:crypto, so the agent and the tunnel load it without the X.509 builder.
 *
 * Identity encoding (authoritative): a gateway client certificate carries exactly one URI SAN
 * `gatepool://org/<orgId>/gateway/<gatewayId>`. The subject (CN=<gatewayId>, O=<orgId>) repeats
 * it for humans reading `openssl x509 -text`; parsing only trusts the SAN. An org CA names its
 * org the same way (`gatepool://org/<orgId>`), so the tunnel can check that a gateway
 * certificate was issued by its own org's CA.
 */
import { createHash, X509Certificate as NodeX509 } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';

const ORG_CA_URI = /^gatepool:\/\/org\/([A-Za-z0-9_-]{1,64})$/;
const IDENTITY_URI = /^gatepool:\/\/org\/([A-Za-z0-9_-]{1,64})\/gateway\/([A-Za-z0-9_-]{1,64})$/;

export interface GatewayIdentity {
  orgId: string;
  gatewayId: string;
}

export interface GatewayCertInfo extends GatewayIdentity {
  /** SHA-256 of the DER certificate, lowercase hex without separators. */
  fingerprint256: string;
  notAfter: Date;
}

export function gatewayIdentityUri(orgId: string, gatewayId: string): string {
  return `gatepool://org/${orgId}/gateway/${gatewayId}`;
}

export function orgCaIdentityUri(orgId: string): string {
  return `gatepool://org/${orgId}`;
}

function uriSans(cert: NodeX509): string[] {
  return (cert.subjectAltName ?? '')
    .split(', ')
    .filter((entry) => entry.startsWith('URI:'))
    .map((entry) => entry.slice(4));
}

/** The org an org CA belongs to (from its `gatepool://org/<orgId>` URI SAN), or null. */
export function parseOrgCa(cert: NodeX509 | string): string | null {
  let parsed: NodeX509;
  try {
    parsed = typeof cert === 'string' ? new NodeX509(cert) : cert;
  } catch {
    return null;
  }
  if (!parsed.ca) return null;
  const uris = uriSans(parsed);
  if (uris.length !== 1) return null;
  return ORG_CA_URI.exec(uris[0] ?? '')?.[1] ?? null;
}

export function fingerprintOfDer(der: Buffer): string {
  return createHash('sha256').update(der).digest('hex');
}

export function fingerprintOfPem(certPem: string): string {
  return fingerprintOfDer(new NodeX509(certPem).raw);
}

/**
 * Reads `{orgId, gatewayId, fingerprint256}` from a gateway certificate (a TLS peer certificate,
 * a node X509Certificate or PEM). Returns null when it carries no gatepool identity. Does not
 * check the issuer: that is the TLS layer's job plus `verifyIssuedBy`.
 */
export function parseGatewayCert(
  cert: PeerCertificate | NodeX509 | string,
): GatewayCertInfo | null {
  let parsed: NodeX509;
  try {
    if (typeof cert === 'string') parsed = new NodeX509(cert);
    else if (cert instanceof NodeX509) parsed = cert;
    else if (cert.raw) parsed = new NodeX509(cert.raw);
    else return null;
  } catch {
    return null;
  }
  const uris = uriSans(parsed);
  if (uris.length !== 1) return null;
  const match = IDENTITY_URI.exec(uris[0] ?? '');
  if (!match?.[1] || !match[2]) return null;
  return {
    orgId: match[1],
    gatewayId: match[2],
    fingerprint256: fingerprintOfDer(parsed.raw),
    notAfter: new Date(parsed.validTo),
  };
}

/** True when `cert` was signed by the CA `ca` and is currently within validity. */
export function verifyIssuedBy(
  cert: string | NodeX509,
  ca: string | NodeX509,
  now = Date.now(),
): boolean {
  try {
    const leaf = typeof cert === 'string' ? new NodeX509(cert) : cert;
    const issuer = typeof ca === 'string' ? new NodeX509(ca) : ca;
    if (!leaf.checkIssued(issuer) || !leaf.verify(issuer.publicKey)) return false;
    return Date.parse(leaf.validFrom) <= now && now <= Date.parse(leaf.validTo);
  } catch {
    return false;
  }
}
