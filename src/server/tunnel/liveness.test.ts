import { describe, expect, it } from 'vitest';
import { creditStall, quietAfterMs, quietFor } from './liveness.js';

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

describe('platform stalls', () => {
  it('leaves the last frame alone when checks run on time (or a little late)', () => {
    expect(creditStall(1000, 1950, 2000, 50)).toBe(1000);
    expect(creditStall(1000, 1900, 2000, 50)).toBe(1000);
  });

  it('does not count time the platform could not look as the gateway being silent', () => {
    // Heard at 1000, checked at 1010, then the platform stalled until 2500.
    const credited = creditStall(1000, 1010, 2500, 50);
    expect(credited).toBe(1000 + (2500 - 1010 - 100));
    // Silence as seen before the stall plus one check period or so, not 1.5 s.
    expect(2500 - credited).toBe(110);
    expect(quietFor({ lastFrameAt: credited, rttMs: 1 }, 2500, 250, 1000)).toBeNull();
  });

  it('never moves the last frame into the future', () => {
    expect(creditStall(5000, 1000, 5000, 50)).toBe(5000);
  });
});
