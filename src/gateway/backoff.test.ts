import { describe, expect, it } from 'vitest';
import { Backoff } from './backoff.js';

function clocked(graceMs = 10_000): { backoff: Backoff; advance: (ms: number) => void } {
  let now = 1_000_000;
  // random() = 1 - ε gives the top of the jitter range, so delays read as the exponential.
  const backoff = new Backoff({
    baseMs: 100,
    capMs: 3000,
    graceMs,
    now: () => now,
    random: () => 0.999_999,
  });
  return { backoff, advance: (ms) => (now += ms) };
}

describe('agent backoff', () => {
  it('doubles per failure up to the cap, with jitter in [exp/2, exp)', () => {
    const { backoff } = clocked();
    expect([1, 2, 3, 4, 5, 6, 7].map(() => backoff.next())).toEqual([
      100, 200, 400, 800, 1600, 3000, 3000,
    ]);
    const low = new Backoff({ baseMs: 100, capMs: 3000, graceMs: 0, random: () => 0 });
    expect(low.next()).toBe(50);
    expect(low.next()).toBe(100);
  });

  it('does not reset when a tunnel comes up and drops at once (a flapping tunnel)', () => {
    const { backoff, advance } = clocked();
    const delays: number[] = [];
    for (let i = 0; i < 8; i += 1) {
      backoff.up();
      advance(50);
      delays.push(backoff.next());
    }
    expect(delays).toEqual([100, 200, 400, 800, 1600, 3000, 3000, 3000]);
  });

  it('resets after the tunnel stayed up for the grace period', () => {
    const { backoff, advance } = clocked();
    for (let i = 0; i < 5; i += 1) backoff.next();
    backoff.up();
    advance(9_999);
    expect(backoff.next()).toBe(3000);
    backoff.up();
    advance(10_000);
    expect(backoff.next()).toBe(100);
    expect(backoff.attempts).toBe(1);
  });

  it('forgets an up that a failure already ended', () => {
    const { backoff, advance } = clocked();
    backoff.up();
    backoff.next();
    advance(60_000);
    // No new up(): the long wait was spent down, not connected.
    expect(backoff.next()).toBe(200);
  });

  it('rejects nonsensical settings', () => {
    expect(() => new Backoff({ baseMs: 0, capMs: 10, graceMs: 0 })).toThrow(/baseMs/);
    expect(() => new Backoff({ baseMs: 10, capMs: 5, graceMs: 0 })).toThrow(/capMs/);
  });
});
