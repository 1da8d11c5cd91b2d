import { describe, expect, it } from 'vitest';
import { quietAfterMs, quietFor } from './liveness.js';

describe('quiet tunnels', () => {
  it('is two keepalive rounds plus the last round trip with the defaults', () => {
    expect(quietAfterMs(250, 1000, null)).toBe(500);
    expect(quietAfterMs(250, 1000, 0.3)).toBe(501);
    expect(quietAfterMs(250, 1000, 120)).toBe(620);
  });

  it('never exceeds the dead threshold, however slow the link', () => {
    expect(quietAfterMs(250, 1000, 900)).toBe(1000);
    expect(quietAfterMs(400, 600, null)).toBe(600);
  });

  it('a tunnel heard from within one keepalive round is not quiet', () => {
    const now = 10_000;
    expect(quietFor({ lastFrameAt: now - 260, rttMs: 1 }, now, 250, 1000)).toBeNull();
    expect(quietFor({ lastFrameAt: now - 500, rttMs: 1 }, now, 250, 1000)).toBeNull();
  });

  it('reports how long it has been silent once a PING went unanswered', () => {
    const now = 10_000;
    expect(quietFor({ lastFrameAt: now - 501, rttMs: 1 }, now, 250, 1000)).toBe(501);
    expect(quietFor({ lastFrameAt: now - 800, rttMs: null }, now, 250, 1000)).toBe(800);
    // A slow link earns more patience before it counts as quiet.
    expect(quietFor({ lastFrameAt: now - 600, rttMs: 200 }, now, 250, 1000)).toBeNull();
  });
});
