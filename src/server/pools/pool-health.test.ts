import { describe, expect, it } from 'vitest';
import { checkVerdict } from '../gateways/health.js';
import { belowFloor, poolHealth } from './pool-health.js';

describe('poolHealth', () => {
  it('classifies by healthy members against min_healthy', () => {
    expect(poolHealth(0, 0, 1)).toBe('empty');
    expect(poolHealth(3, 0, 1)).toBe('down');
    expect(poolHealth(3, 1, 2)).toBe('degraded');
    expect(poolHealth(3, 2, 2)).toBe('healthy');
    expect(poolHealth(3, 3, 0)).toBe('healthy');
  });
  it('counts a pool with no healthy member as below its floor even with min_healthy 0', () => {
    expect(belowFloor(2, 0, 0)).toBe(true);
    expect(belowFloor(2, 1, 2)).toBe(true);
    expect(belowFloor(2, 2, 2)).toBe(false);
    expect(belowFloor(0, 0, 1)).toBe(false);
  });
});

describe('checkVerdict', () => {
  const now = 100_000;
  it('passes without a target, without a result, or with a stale failure', () => {
    expect(checkVerdict(null, [], now, 5000).ok).toBe(true);
    expect(checkVerdict('db:5432', [], now, 5000).ok).toBe(true);
    expect(
      checkVerdict(
        'db:5432',
        [{ target: 'db:5432', ok: false, checkedAt: now - 10_000 }],
        now,
        5000,
      ).ok,
    ).toBe(true);
  });
  it('fails with the reason when the member cannot reach the target', () => {
    expect(
      checkVerdict(
        'db:5432',
        [{ target: 'db:5432', ok: false, error: 'ECONNREFUSED', checkedAt: now - 100 }],
        now,
        5000,
      ),
    ).toEqual({ ok: false, reason: 'cannot reach db:5432: ECONNREFUSED' });
  });
});
