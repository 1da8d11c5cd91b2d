import { describe, expect, it } from 'vitest';
import type { Role } from '../src/api/types';
import {
  limitOf,
  limitsDiffer,
  limitText,
  parseTargets,
  targetsProblem,
} from '../src/pages/roleTargets';

const role = (permissions: Role['permissions']): Role => ({
  slug: 'r',
  name: 'R',
  description: '',
  builtIn: false,
  permissions,
  id: 'x',
});

describe('the role editor’s access target limit', () => {
  it('reads names and globs separated by commas, spaces or new lines', () => {
    expect(parseTargets(' orders-*,billing-db\n\norders-* ')).toEqual(['orders-*', 'billing-db']);
    expect(parseTargets('  ')).toEqual([]);
  });

  it('says what the platform would refuse', () => {
    expect(targetsProblem('orders-*, billing-db')).toBeUndefined();
    expect(targetsProblem('orders-*, Billing_DB')).toMatch(/"Billing_DB" is not a target name/);
    expect(targetsProblem(Array.from({ length: 51 }, (_, i) => `t${i}`).join(','))).toMatch(
      /At most 50/,
    );
  });

  it('shows a role’s limit and whether list and connect differ', () => {
    const limited = role([
      { subject: 'AccessTarget', action: 'list' },
      { subject: 'AccessTarget', action: 'connect', targets: ['orders-*', 'x'] },
    ]);
    expect(limitText(limited)).toBe('orders-*, x');
    expect(limitOf(limited, 'AccessTarget', 'connect')).toBe('orders-*, x');
    expect(limitOf(limited, 'AccessTarget', 'list')).toBeUndefined();
    expect(limitsDiffer(limited)).toBe(true);
    const same = role([
      { subject: 'AccessTarget', action: 'list', targets: ['x', 'orders-*'] },
      { subject: 'AccessTarget', action: 'connect', targets: ['orders-*', 'x'] },
    ]);
    expect(limitsDiffer(same)).toBe(false);
    expect(limitText(undefined)).toBe('');
  });
});
