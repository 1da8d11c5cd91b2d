/**
 * POST /api/v1/gateways/tunnel: an enrolled gateway learns the platform's current tunnel address
 * by proving it holds its key. Anyone else — another key, a stale signature, a certificate the
 * platform does not hold — learns nothing about the gateway.
 */
import { generateKeyPairSync, sign } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lookupTunnel } from '../../src/gateway/enroll.js';
import { NO_SETTINGS, STATE_FORMAT, type GatewayState } from '../../src/gateway/state.js';
import { createGatewayKeyAndCsr } from '../../src/protocol/csr.js';
import { TUNNEL_LOOKUP_PATH, tunnelLookupMessage } from '../../src/protocol/tunnel-lookup.js';
import {
  api,
  bootstrap,
  startTestPlatform,
  type Account,
  type TestPlatform,
} from '../helpers/platform.js';

describe('the tunnel address lookup', () => {
  let tp: TestPlatform;
  let admin: Account;
  let state: GatewayState;

  beforeAll(async () => {
    tp = await startTestPlatform('pglite');
    admin = await bootstrap(tp);
    const token = (await admin.client.post('/api/v1/gateways/enrollment-tokens', {})).body
      .token as string;
    const { keyPem, csrPem } = await createGatewayKeyAndCsr('lookup');
    const enrolled = await api(tp).post('/api/v1/gateways/enroll', {
      token,
      name: 'lookup',
      csr: csrPem,
    });
    expect(enrolled.status).toBe(201);
    state = {
      format: STATE_FORMAT,
      gatewayId: enrolled.body.gatewayId,
      orgId: enrolled.body.orgId,
      name: 'lookup',
      platform: 'http://old.example',
      tunnelAddress: 'old.example:8443',
      keyPem,
      certificatePem: enrolled.body.certificate,
      caCertificatePem: enrolled.body.caCertificate,
      serverCaCertificatePem: enrolled.body.serverCaCertificate,
      enrolledAt: new Date().toISOString(),
      settings: NO_SETTINGS,
    };
  });
  afterAll(async () => {
    await tp?.close();
  });

  const signedBy = (keyPem: string, timestamp = new Date().toISOString()) => ({
    certificate: state.certificatePem,
    timestamp,
    signature: sign(
      'sha256',
      tunnelLookupMessage(state.orgId, state.gatewayId, timestamp),
      keyPem,
    ).toString('base64'),
  });

  it("answers the gateway's own signed question with the current tunnel address", async () => {
    expect(await lookupTunnel(tp.url, state)).toEqual({
      kind: 'found',
      tunnelAddress: tp.platform.ctx.directory.tunnelAddress,
    });
  });

  it('refuses another key, a stale timestamp and a foreign certificate', async () => {
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' })
      .privateKey.export({ type: 'pkcs8', format: 'pem' })
      .toString();
    const wrongKey = await api(tp).post(TUNNEL_LOOKUP_PATH, signedBy(other));
    expect(wrongKey.status).toBe(401);
    expect(wrongKey.body.error.code).toBe('invalid_signature');

    const stale = new Date(Date.now() - 3600_000).toISOString();
    const old = await api(tp).post(TUNNEL_LOOKUP_PATH, signedBy(state.keyPem, stale));
    expect(old.status).toBe(400);
    expect(old.text).toContain('timestamp');

    const garbage = await api(tp).post(TUNNEL_LOOKUP_PATH, {
      ...signedBy(state.keyPem),
      certificate: 'not a certificate',
    });
    expect(garbage.status).toBe(400);
    expect(garbage.text).not.toContain('tunnelAddress');
  });

  it('says an unreachable platform could not be asked, without throwing', async () => {
    const result = await lookupTunnel('http://127.0.0.1:1', state, { timeoutMs: 2000 });
    expect(result.kind).toBe('failed');
  });

  it('answers gateway_unknown once the gateway is deleted', async () => {
    expect((await admin.client.delete(`/api/v1/gateways/${state.gatewayId}`)).status).toBe(200);
    const res = await api(tp).post(TUNNEL_LOOKUP_PATH, signedBy(state.keyPem));
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('gateway_unknown');
    expect(res.text).not.toContain(tp.platform.ctx.directory.tunnelAddress);
    const result = await lookupTunnel(tp.url, state);
    expect(result.kind).toBe('unknown');
  });
});
