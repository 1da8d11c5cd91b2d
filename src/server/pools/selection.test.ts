import { describe, expect, it } from 'vitest';
import { candidate } from '../../../test/helpers/candidates.js';
import { selectMember, type Candidate } from './selection.js';

// Ids unlike names, so a test cannot pass by confusing the two.
const member = (name: string, over: Partial<Candidate> = {}): Candidate =>
  candidate(name, { gatewayId: `id-${name}`, ...over });

/** Deterministic PRNG so a failing distribution test reproduces. */
function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function tally(
  members: Candidate[],
  picks: number,
  opts: Partial<Parameters<typeof selectMember>[1]> = {},
) {
  const random = seeded(42);
  const counts = new Map<string, number>();
  for (let i = 0; i < picks; i++) {
    const s = selectMember(members, { now: 1000, random, ...opts });
    if (!s.ok) throw new Error(s.message);
    counts.set(s.member.name, (counts.get(s.member.name) ?? 0) + 1);
  }
  return counts;
}

describe('selectMember', () => {
  it('spreads picks evenly (within 10%) across equal idle members over 10,000 picks', () => {
    const counts = tally([member('a'), member('b'), member('c')], 10_000);
    for (const name of ['a', 'b', 'c']) {
      const share = (counts.get(name) ?? 0) / 10_000;
      expect(Math.abs(share - 1 / 3)).toBeLessThan(0.1 / 3);
    }
  });

  it('respects weights', () => {
    const counts = tally(
      [member('heavy', { weight: 300 }), member('light', { weight: 100 })],
      10_000,
    );
    const share = (counts.get('heavy') ?? 0) / 10_000;
    expect(share).toBeGreaterThan(0.7);
    expect(share).toBeLessThan(0.8);
  });

  it('prefers the less loaded of two members', () => {
    const counts = tally(
      [member('busy', { outstanding: 50 }), member('idle', { outstanding: 0 })],
      1000,
    );
    expect(counts.get('busy') ?? 0).toBeLessThan(counts.get('idle') ?? 0);
    expect((counts.get('idle') ?? 0) / 1000).toBeGreaterThan(0.7);
  });

  it('never picks an unhealthy member and explains when none is healthy', () => {
    const counts = tally([member('down', { healthy: false }), member('up')], 500);
    expect(counts.get('down')).toBeUndefined();
    const none = selectMember([member('a', { healthy: false, unhealthyReason: 'unreachable' })], {
      now: 0,
    });
    expect(none).toEqual({
      ok: false,
      reason: 'none_healthy',
      message: 'no healthy member (a: unreachable)',
    });
  });

  it('skips suspect members but uses them when every candidate is suspect', () => {
    const now = 10_000;
    const counts = tally([member('suspect', { suspectUntil: now + 5000 }), member('fine')], 500, {
      now,
    });
    expect(counts.get('suspect')).toBeUndefined();
    const allSuspect = selectMember(
      [member('s1', { suspectUntil: now + 1 }), member('s2', { suspectUntil: now + 1 })],
      { now },
    );
    expect(allSuspect.ok).toBe(true);
    const expired = tally([member('was', { suspectUntil: now - 1 }), member('fine')], 1000, {
      now,
    });
    expect(expired.get('was') ?? 0).toBeGreaterThan(300);
  });

  it('treats a quiet member as a last resort: skipped while another is heard, used when all are quiet', () => {
    const counts = tally([member('quiet', { quiet: true }), member('fine')], 500, { now: 0 });
    expect(counts.get('quiet')).toBeUndefined();
    expect(counts.get('fine')).toBe(500);
    const allQuiet = tally([member('q1', { quiet: true }), member('q2', { quiet: true })], 1000, {
      now: 0,
    });
    expect(allQuiet.get('q1') ?? 0).toBeGreaterThan(400);
    expect(allQuiet.get('q2') ?? 0).toBeGreaterThan(400);
    // A quiet member in the preferred tier sends traffic to the next tier, like a suspect.
    const tiers = tally(
      [member('primary', { quiet: true, priority: 0 }), member('standby', { priority: 1 })],
      200,
      { now: 0 },
    );
    expect(tiers.get('standby')).toBe(200);
  });

  it('honours exclusions and reports when all healthy members were tried', () => {
    const members = [member('a'), member('b')];
    const s = selectMember(members, { now: 0, exclude: new Set(['id-a']) });
    expect(s.ok && s.member.name).toBe('b');
    expect(selectMember(members, { now: 0, exclude: new Set(['id-a', 'id-b']) })).toMatchObject({
      ok: false,
      reason: 'all_tried',
    });
  });

  it('filters on labels with a message naming what was asked for', () => {
    const members = [
      member('eu', { labels: { region: 'eu' } }),
      member('us', { labels: { region: 'us' } }),
    ];
    const s = selectMember(members, { now: 0, filter: { labels: { region: 'us' } } });
    expect(s.ok && s.member.name).toBe('us');
    expect(selectMember(members, { now: 0, filter: { labels: { region: 'ap' } } })).toEqual({
      ok: false,
      reason: 'no_match',
      message: 'no healthy member matches region=ap',
    });
    expect(
      selectMember(members, {
        now: 0,
        filter: { labels: { region: 'ap' }, description: 'a member in Asia' },
      }),
    ).toMatchObject({
      message: 'no healthy member matches a member in Asia',
    });
  });

  it('uses the lowest priority tier present and falls back to the next when it is gone', () => {
    const primary = member('primary', { priority: 0 });
    const standby = member('standby', { priority: 1 });
    expect(tally([primary, standby], 200).get('standby')).toBeUndefined();
    const s = selectMember([{ ...primary, healthy: false }, standby], { now: 0 });
    expect(s.ok && s.member.name).toBe('standby');
  });

  it('gives the same answers for large and small pools in any order (no state leaks between calls)', () => {
    // 300 members, every third unhealthy, every fifth suspect, the last ten in tier 0.
    const big = Array.from({ length: 300 }, (_, i) =>
      member(`m${i}`, {
        healthy: i % 3 !== 0,
        suspectUntil: i % 5 === 0 ? 2000 : undefined,
        priority: i >= 290 ? 0 : 1,
      }),
    );
    const usable = new Set(
      big
        .filter((m) => m.healthy && m.priority === 0 && m.suspectUntil === undefined)
        .map((m) => m.name),
    );
    const small = [member('x', { healthy: false }), member('y')];
    for (let round = 0; round < 3; round++) {
      for (const name of tally(big, 300).keys()) expect(usable.has(name)).toBe(true);
      expect([...tally(small, 20).keys()]).toEqual(['y']);
    }
  });

  it('answers empty for a pool without members', () => {
    expect(selectMember([], { now: 0 })).toMatchObject({ ok: false, reason: 'empty' });
  });
});
