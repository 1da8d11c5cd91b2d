import { describe, expect, it } from 'vitest';
import { metricsOpenTo } from './metrics-route.js';

describe('metricsOpenTo (no GATEPOOL_METRICS_TOKEN)', () => {
  it('opens to loopback peers', () => {
    for (const peer of ['127.0.0.1', '127.3.2.1', '::1', '::ffff:127.0.0.1'])
      expect(metricsOpenTo(peer, {}), peer).toBe(true);
  });

  it('refuses every other peer, and an unknown one', () => {
    for (const peer of ['10.0.0.5', '192.168.1.2', '::ffff:10.0.0.1', 'fe80::1', '0.0.0.0', ''])
      expect(metricsOpenTo(peer, {}), peer).toBe(false);
    expect(metricsOpenTo(undefined, {})).toBe(false);
  });

  it('refuses a loopback peer that forwards someone else (a reverse proxy on this host)', () => {
    expect(metricsOpenTo('127.0.0.1', { 'x-forwarded-for': '203.0.113.9' })).toBe(false);
    expect(metricsOpenTo('127.0.0.1', { forwarded: 'for=203.0.113.9' })).toBe(false);
    expect(metricsOpenTo('::1', { 'x-real-ip': '203.0.113.9' })).toBe(false);
  });
});
