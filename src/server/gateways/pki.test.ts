import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  createGatewayKeyAndCsr,
  createOrgCa,
  createTunnelServerCa,
  createTunnelServerCert,
  CsrError,
  fingerprintOfPem,
  gatewayIdentityUri,
  parseGatewayCert,
  parseOrgCa,
  signGatewayCsr,
  verifyIssuedBy,
} from './pki.js';

describe('gateway PKI', () => {
  it('issues a gateway certificate that carries its identity and chains to the org CA', async () => {
    const ca = await createOrgCa('org_1');
    expect(parseOrgCa(ca.certPem)).toBe('org_1');
    const { keyPem, csrPem } = await createGatewayKeyAndCsr('edge-1');
    expect(keyPem).toContain('PRIVATE KEY');
    const signed = await signGatewayCsr({ ca, csrPem, orgId: 'org_1', gatewayId: 'gw_1' });
    const info = parseGatewayCert(signed.certPem);
    expect(info).toMatchObject({ orgId: 'org_1', gatewayId: 'gw_1' });
    expect(info?.fingerprint256).toBe(signed.fingerprint256);
    expect(fingerprintOfPem(signed.certPem)).toBe(signed.fingerprint256);
    expect(verifyIssuedBy(signed.certPem, ca.certPem)).toBe(true);
    const cert = new X509Certificate(signed.certPem);
    expect(cert.subjectAltName).toBe(`URI:${gatewayIdentityUri('org_1', 'gw_1')}`);
    expect(cert.ca).toBe(false);
    // The issued key is the CSR's key: the private key never left the gateway.
    expect(
      cert.checkPrivateKey(await import('node:crypto').then((c) => c.createPrivateKey(keyPem))),
    ).toBe(true);
  });

  it('does not verify a certificate against another org CA', async () => {
    const [caA, caB] = await Promise.all([createOrgCa('orgA'), createOrgCa('orgB')]);
    const { csrPem } = await createGatewayKeyAndCsr('x');
    const signed = await signGatewayCsr({ ca: caA, csrPem, orgId: 'orgA', gatewayId: 'gw' });
    expect(verifyIssuedBy(signed.certPem, caB.certPem)).toBe(false);
  });

  it('rejects an invalid or tampered CSR', async () => {
    const ca = await createOrgCa('org1');
    await expect(
      signGatewayCsr({ ca, csrPem: 'nope', orgId: 'org1', gatewayId: 'g' }),
    ).rejects.toThrow(CsrError);
    await expect(
      signGatewayCsr({ ca, csrPem: ca.certPem, orgId: 'org1', gatewayId: 'g' }),
    ).rejects.toThrow(CsrError);
  });

  it('refuses ids that cannot be encoded in the identity URI', async () => {
    const ca = await createOrgCa('org1');
    const { csrPem } = await createGatewayKeyAndCsr('x');
    await expect(signGatewayCsr({ ca, csrPem, orgId: 'org1', gatewayId: 'a/b' })).rejects.toThrow();
    await expect(createOrgCa('bad org')).rejects.toThrow();
  });

  it('finds no identity in certificates that are not gateway certificates', async () => {
    const serverCa = await createTunnelServerCa();
    const server = await createTunnelServerCert(serverCa, {
      hostnames: ['tunnel.example.com', '10.1.2.3'],
    });
    expect(parseGatewayCert(server.certPem)).toBeNull();
    expect(parseOrgCa(serverCa.certPem)).toBeNull();
    expect(parseGatewayCert('garbage')).toBeNull();
    const cert = new X509Certificate(server.certPem);
    expect(cert.checkHost('tunnel.example.com')).toBe('tunnel.example.com');
    expect(cert.checkIP('10.1.2.3')).toBe('10.1.2.3');
    expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(verifyIssuedBy(server.certPem, serverCa.certPem)).toBe(true);
  });
});
