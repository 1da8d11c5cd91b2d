import { describe, expect, it } from 'vitest';
import { buildAbility, targetScope, targetSubject } from './ability.js';
import { notHeld } from './grant.js';
import { coversAll, likePattern, matchesAny, patternProblem, patternsSource } from './targets.js';

describe('target patterns', () => {
  it('accepts names and globs, refuses anything else with the reason', () => {
    for (const ok of ['orders-db', 'orders-*', '*', '*-db', 'a*b', 'orders-*-eu'])
      expect(patternProblem(ok)).toBeNull();
    expect(patternProblem('')).toMatch(/empty/);
    expect(patternProblem('x'.repeat(64))).toMatch(/at most 63/);
    for (const bad of ['Orders', 'orders_db', 'orders--db', '-db', 'db-', 'a.b', '?', '[a]', 'a b'])
      expect(patternProblem(bad)).toMatch(/lowercase letters/);
    expect(patternProblem(5)).toMatch(/string/);
  });

  it('matches whole names; "*" spans any run of characters, hyphens included', () => {
    expect(matchesAny(['orders-*'], 'orders-db')).toBe(true);
    expect(matchesAny(['orders-*'], 'orders-eu-1')).toBe(true);
    expect(matchesAny(['orders-*'], 'orders')).toBe(false);
    expect(matchesAny(['orders-*'], 'old-orders-db')).toBe(false);
    expect(matchesAny(['orders-db'], 'orders-db-2')).toBe(false);
    expect(matchesAny(['*-db', 'cache'], 'billing-db')).toBe(true);
    expect(matchesAny(['*-db', 'cache'], 'cache')).toBe(true);
    expect(matchesAny([], 'anything')).toBe(false);
    expect(patternsSource(['a*', 'b'])).toBe('^(?:a.*|b)$');
    expect(likePattern('orders-*-eu')).toBe('orders-%-eu');
  });

  it('covers identical entries, names its patterns match, and anything under "*"', () => {
    expect(coversAll(['orders-*'], ['orders-*', 'orders-db'])).toBe(true);
    expect(coversAll(['orders-*'], ['orders-eu-*'])).toBe(false);
    expect(coversAll(['orders-*'], ['*'])).toBe(false);
    expect(coversAll(['orders-*'], ['billing-db'])).toBe(false);
    expect(coversAll(['*'], ['orders-eu-*', 'x'])).toBe(true);
  });
});

describe('abilities with target limits', () => {
  const limited = buildAbility([
    { subject: 'AccessTarget', action: 'list' },
    { subject: 'AccessTarget', action: 'connect', targets: ['orders-*'] },
  ]);

  it('checks the limit per target; the subject type means "some target"', () => {
    expect(limited.can('connect', 'AccessTarget')).toBe(true);
    expect(limited.can('connect', targetSubject({ name: 'orders-db' }))).toBe(true);
    expect(limited.can('connect', targetSubject({ name: 'billing-db' }))).toBe(false);
    expect(limited.can('list', targetSubject({ name: 'billing-db' }))).toBe(true);
    expect(targetScope(limited, 'connect')).toEqual(['orders-*']);
    expect(targetScope(limited, 'list')).toBe('all');
    expect(targetScope(limited, 'create')).toEqual([]);
  });

  it('a stored limit it does not understand grants nothing, not everything', () => {
    const odd = buildAbility([
      { subject: 'AccessTarget', action: 'connect', targets: [] },
      { subject: 'AccessTarget', action: 'delete', targets: ['x'] },
      { subject: 'Gateway', action: 'read', targets: ['x'] },
      { subject: 'AccessTarget', action: 'list', targets: ['BAD PATTERN'] },
    ]);
    for (const [action, subject] of [
      ['connect', 'AccessTarget'],
      ['delete', 'AccessTarget'],
      ['read', 'Gateway'],
      ['list', 'AccessTarget'],
    ] as const)
      expect(odd.can(action, subject)).toBe(false);
  });

  it('a limited permission is weaker than an unlimited one when granting', () => {
    expect(notHeld(limited, [{ subject: 'AccessTarget', action: 'connect' }])).toEqual([
      { subject: 'AccessTarget', action: 'connect' },
    ]);
    expect(
      notHeld(limited, [
        { subject: 'AccessTarget', action: 'connect', targets: ['*', 'orders-db'] },
      ]),
    ).toEqual([{ subject: 'AccessTarget', action: 'connect', targets: ['*'] }]);
    expect(
      notHeld(limited, [
        { subject: 'AccessTarget', action: 'connect', targets: ['orders-*', 'orders-db'] },
        { subject: 'AccessTarget', action: 'list', targets: ['billing-*'] },
      ]),
    ).toEqual([]);
    expect(notHeld(limited, [{ subject: 'Role', action: 'read' }])).toEqual([
      { subject: 'Role', action: 'read' },
    ]);
    const admin = buildAbility([{ subject: 'AccessTarget', action: 'connect' }]);
    expect(
      notHeld(admin, [{ subject: 'AccessTarget', action: 'connect', targets: ['*'] }]),
    ).toEqual([]);
  });
});
