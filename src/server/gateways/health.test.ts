import { describe, expect, it } from 'vitest';
import type { GatewayLive } from '../tunnel/session.js';
import { computeHealth, healthView } from './health.js';

const NOW = Date.parse('2025-01-01T12:00:00Z');
const DEAD = 1000;

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

const fresh = { everConnected: false, lastSeenAt: null };
const seenBefore = { everConnected: true, lastSeenAt: new Date(NOW - 3_600_000) };

describe('computeHealth', () => {
  it('is never-connected for an enrolled gateway never seen', () => {
    expect(computeHealth(fresh, undefined, NOW, DEAD)).toBe('never-connected');
  });

  it('is unreachable once it was connected and the tunnel is gone', () => {
    expect(computeHealth(seenBefore, undefined, NOW, DEAD)).toBe('unreachable');
    expect(computeHealth({ everConnected: true, lastSeenAt: null }, undefined, NOW, DEAD)).toBe(
      'unreachable',
    );
    expect(
      computeHealth({ everConnected: false, lastSeenAt: new Date(NOW) }, undefined, NOW, DEAD),
    ).toBe('unreachable');
  });

  it('is healthy with a recent frame', () => {
    expect(computeHealth(fresh, live(), NOW, DEAD)).toBe('healthy');
    expect(computeHealth(seenBefore, live({ lastFrameAt: NOW - DEAD + 1 }), NOW, DEAD)).toBe(
      'healthy',
    );
  });

  it('is unreachable when the live tunnel went silent for deadAfterMs', () => {
    expect(computeHealth(seenBefore, live({ lastFrameAt: NOW - DEAD }), NOW, DEAD)).toBe(
      'unreachable',
    );
    expect(
      computeHealth(seenBefore, live({ lastFrameAt: NOW - 5000, draining: true }), NOW, DEAD),
    ).toBe('unreachable');
  });

  it('is draining when the tunnel is up and draining', () => {
    expect(computeHealth(seenBefore, live({ draining: true }), NOW, DEAD)).toBe('draining');
  });

  it('accepts a Date for now', () => {
    expect(computeHealth(seenBefore, live(), new Date(NOW), DEAD)).toBe('healthy');
  });
});

describe('healthView', () => {
  it('reports live figures when connected', () => {
    const view = healthView(seenBefore, live(), NOW, DEAD);
    expect(view).toEqual({
      health: 'healthy',
      lastSeenAt: new Date(NOW - 100),
      connectedSince: new Date(NOW - 60_000),
      rttMs: 0.4,
      activeStreams: 3,
      version: '0.1.0',
      labels: { zone: 'a' },
      draining: false,
      remoteAddress: '10.0.0.9',
    });
  });

  it('falls back to persisted facts when not connected', () => {
    expect(healthView(seenBefore, undefined, NOW, DEAD)).toEqual({
      health: 'unreachable',
      lastSeenAt: seenBefore.lastSeenAt,
      connectedSince: null,
      rttMs: null,
      activeStreams: 0,
      version: null,
      labels: {},
      draining: false,
      remoteAddress: null,
    });
    expect(healthView(fresh, undefined, NOW, DEAD).health).toBe('never-connected');
  });

  it('does not share the live labels object', () => {
    const state = live();
    const view = healthView(seenBefore, state, NOW, DEAD);
    view.labels.extra = 'x';
    expect(state.labels).toEqual({ zone: 'a' });
  });
});
