import { describe, expect, it } from 'vitest';
import type { GatewayLive } from '../tunnel/session.js';
import { assessHealth, emptyVerdict, type HealthTiming } from './health.js';

const NOW = Date.parse('2025-01-01T12:00:00Z');
const TIMING: HealthTiming = { deadAfterMs: 1000, keepaliveMs: 250, checkStaleMs: 5000 };
const TARGET = 'db:5432';

function live(overrides: Partial<GatewayLive> = {}): GatewayLive {
  return {
    orgId: 'org1',
    gatewayId: 'gw1',
    name: 'gw',
    connectedSince: new Date(NOW - 60_000),
    lastFrameAt: NOW - 100,
    rttMs: 0.4,
    activeStreams: 3,
    version: '0.1.0',
    labels: { zone: 'a' },
    draining: false,
    healthChecks: [],
    remoteAddress: '10.0.0.9',
    ...overrides,
  };
}

interface Case {
  name: string;
  everConnected: boolean;
  live?: GatewayLive;
  checkTarget?: string;
  suspect?: { until: number; reason: string };
  health: string;
  healthy: boolean;
  reason?: string | RegExp;
  quiet?: boolean;
  lastResort?: RegExp;
}

const failedCheck = [{ target: TARGET, ok: false, error: 'ECONNREFUSED', checkedAt: NOW - 500 }];

const CASES: Case[] = [
  {
    name: 'never connected',
    everConnected: false,
    health: 'never-connected',
    healthy: false,
    reason: 'never-connected',
  },
  {
    name: 'was connected, tunnel gone',
    everConnected: true,
    health: 'unreachable',
    healthy: false,
    reason: 'unreachable',
  },
  {
    name: 'live, never persisted as connected',
    everConnected: false,
    live: live(),
    health: 'healthy',
    healthy: true,
  },
  {
    name: 'live and heard from',
    everConnected: true,
    live: live(),
    health: 'healthy',
    healthy: true,
  },
  {
    name: 'draining',
    everConnected: true,
    live: live({ draining: true }),
    health: 'draining',
    healthy: false,
    reason: 'draining',
  },
  {
    name: 'silent for deadAfterMs',
    everConnected: true,
    live: live({ lastFrameAt: NOW - 1000 }),
    health: 'unreachable',
    healthy: false,
  },
  {
    name: 'silent and draining',
    everConnected: true,
    live: live({ lastFrameAt: NOW - 5000, draining: true }),
    health: 'unreachable',
    healthy: false,
  },
  {
    name: 'quiet',
    everConnected: true,
    live: live({ lastFrameAt: NOW - 600 }),
    health: 'healthy',
    healthy: true,
    quiet: true,
    lastResort: /^tunnel quiet for 600 ms/,
  },
  {
    name: 'suspect',
    everConnected: true,
    live: live(),
    suspect: { until: NOW + 2000, reason: 'stream refused' },
    health: 'healthy',
    healthy: true,
    lastResort: /^recent failure: stream refused; a last resort until 2025-01-01T12:00:02/,
  },
  {
    name: 'suspect mark expired',
    everConnected: true,
    live: live(),
    suspect: { until: NOW, reason: 'x' },
    health: 'healthy',
    healthy: true,
  },
  {
    name: 'degraded (failing the pool check)',
    everConnected: true,
    live: live({ healthChecks: failedCheck }),
    checkTarget: TARGET,
    health: 'degraded',
    healthy: false,
    reason: `cannot reach ${TARGET}: ECONNREFUSED`,
  },
  {
    name: 'failing another target only',
    everConnected: true,
    live: live({ healthChecks: failedCheck }),
    checkTarget: 'other:1',
    health: 'healthy',
    healthy: true,
  },
  {
    name: 'check result stale',
    everConnected: true,
    live: live({ healthChecks: [{ ...failedCheck[0]!, checkedAt: NOW - 6000 }] }),
    checkTarget: TARGET,
    health: 'healthy',
    healthy: true,
  },
  {
    name: 'draining beats a failed check',
    everConnected: true,
    live: live({ draining: true, healthChecks: failedCheck }),
    checkTarget: TARGET,
    health: 'draining',
    healthy: false,
  },
];

describe('assessHealth', () => {
  it.each(CASES)('$name → $health', (c) => {
    const v = assessHealth(
      emptyVerdict(),
      TIMING,
      NOW,
      c.everConnected,
      c.live,
      c.checkTarget ?? null,
      c.suspect,
      true,
    );
    expect(v.health).toBe(c.health);
    expect(v.healthy).toBe(c.healthy);
    if (c.reason instanceof RegExp) expect(v.unhealthyReason).toMatch(c.reason);
    else if (c.reason) expect(v.unhealthyReason).toBe(c.reason);
    if (c.healthy) expect(v.unhealthyReason).toBeUndefined();
    expect(v.quiet).toBe(c.quiet ?? false);
    if (c.lastResort) expect(v.lastResort).toMatch(c.lastResort);
    else expect(v.lastResort).toBeNull();
  });

  it('explains nothing (and allocates no text) unless asked', () => {
    const v = assessHealth(
      emptyVerdict(),
      TIMING,
      NOW,
      true,
      live({ lastFrameAt: NOW - 600 }),
      null,
      undefined,
      false,
    );
    expect(v).toMatchObject({ health: 'healthy', quiet: true, lastResort: null });
  });

  it('resets a reused verdict completely', () => {
    const v = emptyVerdict();
    assessHealth(
      v,
      TIMING,
      NOW,
      true,
      live({ lastFrameAt: NOW - 600 }),
      null,
      { until: NOW + 1, reason: 'x' },
      true,
    );
    expect(v.lastResort).not.toBeNull();
    assessHealth(v, TIMING, NOW, true, undefined, null, undefined, true);
    expect(v).toEqual({
      health: 'unreachable',
      healthy: false,
      unhealthyReason: 'unreachable',
      quiet: false,
      suspectUntil: undefined,
      lastResort: null,
    });
  });
});
