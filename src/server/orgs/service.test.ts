import { describe, expect, it } from 'vitest';
import { pinnedWarning } from './service.js';

const pin = (i: number) => ({
  kind: 'access-target',
  id: `id-${i}`,
  name: `db-${i}`,
  gatewayName: 'gw-a',
});

describe('pinnedWarning', () => {
  it('says nothing when no consumer is pinned', () => {
    expect(pinnedWarning([])).toBeUndefined();
  });

  it('names one pinned consumer and its gateway', () => {
    expect(pinnedWarning([pin(1)])).toBe(
      'requireGatewayPools is on, but 1 consumer still uses a single gateway and keeps it until ' +
        'changed (no failover): access-target "db-1" (gateway "gw-a"). Move them to a pool; ' +
        'pointing them at a single gateway again is now refused.',
    );
  });

  it('names the first 20 and counts the rest', () => {
    const text = pinnedWarning(Array.from({ length: 23 }, (_, i) => pin(i))) ?? '';
    expect(text).toContain('23 consumers still use a single gateway and keep it');
    expect(text).toContain('"db-19"');
    expect(text).not.toContain('"db-20"');
    expect(text).toContain(', and 3 more.');
  });
});
