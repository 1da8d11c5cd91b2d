/**
 * GET /metrics: Prometheus text, guarded by a bearer token when GATEPOOL_METRICS_TOKEN is set,
 * else served to this host only.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DRIVERS, startTestPlatform, type TestPlatform } from '../helpers/platform.js';

describe.each(DRIVERS)('metrics endpoint (%s)', (driver) => {
  const token = 'scrape-secret-0123456789';
  let open: TestPlatform;
  let guarded: TestPlatform;
  beforeAll(async () => {
    open = await startTestPlatform(driver);
    guarded = await startTestPlatform(driver, {
      configOverrides: { GATEPOOL_METRICS_TOKEN: token },
    });
  });
  afterAll(async () => {
    await open?.close();
    await guarded?.close();
  });

  it('refuses a scrape forwarded by a proxy when no token is set, saying how to allow it', async () => {
    const res = await fetch(`${open.url}/metrics`, {
      headers: { 'x-forwarded-for': '203.0.113.9' },
    });
    expect(res.status).toBe(403);
    const body = (await res.json()) as { error: { message: string } };
    expect(body.error.message).toMatch(/GATEPOOL_METRICS_TOKEN/);
    // With the token, where the scrape comes from does not matter.
    const withToken = await fetch(`${guarded.url}/metrics`, {
      headers: { authorization: `Bearer ${token}`, 'x-forwarded-for': '203.0.113.9' },
    });
    expect(withToken.status).toBe(200);
  });

  it('serves Prometheus text without a token on this host', async () => {
    const res = await fetch(`${open.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    expect(text).toContain('# TYPE gatepool_gateways gauge');
    // Process metrics carry one prefix, not two.
    expect(text).toMatch(/^gatepool_process_cpu_user_seconds_total /m);
    expect(text).toMatch(/^gatepool_nodejs_eventloop_lag_seconds /m);
    expect(text).not.toContain('gatepool_process_process_');
  });

  it('requires the configured bearer token', async () => {
    expect((await fetch(`${guarded.url}/metrics`)).status).toBe(401);
    const wrong = await fetch(`${guarded.url}/metrics`, {
      headers: { authorization: 'Bearer nope' },
    });
    expect(wrong.status).toBe(401);
    expect(((await wrong.json()) as { error: { code: string } }).error.code).toBe('unauthorized');
    const right = await fetch(`${guarded.url}/metrics`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(right.status).toBe(200);
    expect(await right.text()).toContain('gatepool_tunnel_stream_opens_total');
  });
});
