/**
 * X-Forwarded-For is believed only from configured proxies: by default a client cannot choose
 * the IP that per-IP rate limits and the audit log see.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/server/config.js';
import { api, bootstrap, startTestPlatform, type TestPlatform } from '../helpers/platform.js';

describe('trusting proxies', () => {
  let tp: TestPlatform;
  beforeAll(async () => {
    tp = await startTestPlatform('pglite', {
      configOverrides: { GATEPOOL_TRUST_PROXY: undefined },
    });
  });
  afterAll(async () => tp?.close());

  it('ignores X-Forwarded-For by default, for the audit IP and the login limit', async () => {
    const admin = await bootstrap(tp);
    const spoofed = { headers: { 'x-forwarded-for': '198.51.100.77' } };
    await api(tp).post(
      '/api/v1/auth/login',
      { email: admin.email, password: 'wrong-password-1' },
      spoofed,
    );
    const audit = await admin.client.get('/api/v1/audit-logs?event=auth.login-failed');
    expect(audit.body.items[0].ip).not.toBe('198.51.100.77');
    expect(audit.body.items[0].ip).toMatch(/127\.0\.0\.1/);
    // Rotating the header does not buy fresh per-IP budgets.
    let limited = false;
    for (let i = 0; i < 40 && !limited; i++) {
      const res = await api(tp).post(
        '/api/v1/auth/login',
        { email: `nobody-${i}@example.com`, password: 'wrong-password-1' },
        { headers: { 'x-forwarded-for': `203.0.113.${i}` } },
      );
      limited = res.status === 429;
    }
    expect(limited).toBe(true);
  });

  it('validates the setting', () => {
    expect(loadConfig({}).trustProxy).toBe(false);
    expect(loadConfig({ GATEPOOL_TRUST_PROXY: 'true' }).trustProxy).toBe(true);
    expect(loadConfig({ GATEPOOL_TRUST_PROXY: '10.0.0.0/8, 127.0.0.1' }).trustProxy).toBe(
      '10.0.0.0/8, 127.0.0.1',
    );
    expect(() => loadConfig({ GATEPOOL_TRUST_PROXY: 'everyone!' })).toThrow(/GATEPOOL_TRUST_PROXY/);
  });
});
