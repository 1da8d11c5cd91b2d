/**
 * Key pairs and the enrollment CSR, shared by the agent (which creates its key and CSR) and the
 * platform's CA (which uses the same key parameters). Loads @peculiar/x509, which is heavy: the
 * agent imports this module only when it enrolls.
 */
// Side effect first: @peculiar/x509 throws at load time without it.
import './reflect-shim.js';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

// Our lib is ES2023 without DOM, so the WebCrypto types come from node:crypto's namespace.
type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

// @peculiar/x509 defaults to globalThis.crypto; pinning node's implementation keeps it independent
// of whatever the runtime installs as the global.
x509.cryptoProvider.set(webcrypto);

export const EC_KEY: webcrypto.EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' };
export const EC_SIGN: webcrypto.EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };

export async function generateKeyPair(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(EC_KEY, true, ['sign', 'verify'])) as CryptoKeyPair;
}

export async function exportKeyPem(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

export interface GatewayKeyAndCsr {
  keyPem: string;
  csrPem: string;
}

/** Gateway side: a fresh key (never leaves the host) and a CSR for it. */
export async function createGatewayKeyAndCsr(name: string): Promise<GatewayKeyAndCsr> {
  const keys = await generateKeyPair();
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    // The requested name is informational; the CA decides the certificate's identity.
    name: [{ CN: [name.slice(0, 64) || 'gateway'] }],
    keys,
    signingAlgorithm: EC_SIGN,
  });
  return { keyPem: await exportKeyPem(keys.privateKey), csrPem: csr.toString('pem') };
}
