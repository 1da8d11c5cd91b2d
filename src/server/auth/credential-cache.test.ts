import { describe, expect, it } from 'vitest';
import { buildAbility } from '../rbac/ability.js';
import type { Actor } from './actor.js';
import { CredentialCache } from './credential-cache.js';

const actor = (id: string): Actor => ({
  type: 'user',
  id,
  name: `${id}@example.com`,
  orgId: 'org-1',
  role: 'viewer',
  ability: buildAbility([{ action: 'read', subject: 'Member' }]),
  sessionId: `s-${id}`,
});

function clock(start = 1_000_000) {
  let t = start;
  return {
    now: () => t,
    advance: (ms: number) => void (t += ms),
  };
}

describe('credential cache', () => {
  it('serves what was stored, by hash, until its max age', () => {
    const c = clock();
    const cache = new CredentialCache({ maxAgeMs: 30_000, now: c.now });
    expect(cache.get('h1')).toBeUndefined();
    expect(cache.set('h1', cache.generation(), { actor: actor('a'), expiresAt: null })).toBe(true);
    expect(cache.get('h1')?.actor.id).toBe('a');
    expect(cache.get('h2')).toBeUndefined();
    c.advance(29_999);
    expect(cache.get('h1')?.actor.id).toBe('a');
    c.advance(1);
    expect(cache.get('h1')).toBeUndefined();
    // Kept for a database outage only.
    expect(cache.getDuringOutage('h1')?.actor.id).toBe('a');
  });

  it('while the database is away, serves older entries up to the outage age, then drops them', () => {
    const c = clock();
    const cache = new CredentialCache({ maxAgeMs: 30_000, outageMaxAgeMs: 600_000, now: c.now });
    cache.set('h', cache.generation(), { actor: actor('a'), expiresAt: null });
    c.advance(599_999);
    expect(cache.get('h')).toBeUndefined();
    expect(cache.getDuringOutage('h')?.actor.id).toBe('a');
    c.advance(1);
    expect(cache.getDuringOutage('h')).toBeUndefined();
    // Dropped, not just hidden.
    expect(cache.size).toBe(0);
    // A revocation (clear) and the credential's own expiry count during an outage too.
    cache.set('h', cache.generation(), {
      actor: actor('a'),
      expiresAt: new Date(c.now() + 60_000),
    });
    c.advance(60_000);
    expect(cache.getDuringOutage('h')).toBeUndefined();
    cache.set('h', cache.generation(), { actor: actor('a'), expiresAt: null });
    cache.clear();
    expect(cache.getDuringOutage('h')).toBeUndefined();
  });

  it('a clear by a change the database could not take keeps callers for the outage only', () => {
    const cache = new CredentialCache();
    cache.set('h', cache.generation(), { actor: actor('a'), expiresAt: null });
    const before = cache.generation();
    cache.clear({ databaseAway: true });
    // Asked from the database again as after any clear, and a lookup begun before is not stored.
    expect(cache.get('h')).toBeUndefined();
    expect(cache.set('h2', before, { actor: actor('b'), expiresAt: null })).toBe(false);
    expect(cache.getDuringOutage('h')?.actor.id).toBe('a');
    // Filled again from the database: an ordinary entry once more.
    cache.set('h', cache.generation(), { actor: actor('a'), expiresAt: null });
    expect(cache.get('h')?.actor.id).toBe('a');
  });

  it('never serves a credential past its own expiry, even well within the max age', () => {
    const c = clock();
    const cache = new CredentialCache({ maxAgeMs: 30_000, now: c.now });
    cache.set('h', cache.generation(), {
      actor: actor('a'),
      expiresAt: new Date(c.now() + 5_000),
    });
    c.advance(4_999);
    expect(cache.get('h')).toBeDefined();
    c.advance(1);
    expect(cache.get('h')).toBeUndefined();
    // Already expired when the lookup ends: not stored at all.
    expect(
      cache.set('h', cache.generation(), { actor: actor('a'), expiresAt: new Date(c.now()) }),
    ).toBe(false);
    expect(cache.get('h')).toBeUndefined();
  });

  it('clear() forgets everything', () => {
    const cache = new CredentialCache();
    cache.set('h1', cache.generation(), { actor: actor('a'), expiresAt: null });
    cache.set('h2', cache.generation(), { actor: actor('b'), expiresAt: null });
    cache.clear();
    expect(cache.get('h1')).toBeUndefined();
    expect(cache.get('h2')).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it('does not store a lookup that began before a clear (a revocation raced it)', () => {
    const cache = new CredentialCache();
    const began = cache.generation();
    cache.clear();
    expect(cache.set('h', began, { actor: actor('stale'), expiresAt: null })).toBe(false);
    expect(cache.get('h')).toBeUndefined();
    // A lookup that began after the clear is stored.
    expect(cache.set('h', cache.generation(), { actor: actor('fresh'), expiresAt: null })).toBe(
      true,
    );
    expect(cache.get('h')?.actor.id).toBe('fresh');
  });

  it('stays within its bound, evicting the oldest entry first', () => {
    const cache = new CredentialCache({ maxEntries: 3 });
    for (const h of ['h1', 'h2', 'h3'])
      cache.set(h, cache.generation(), { actor: actor(h), expiresAt: null });
    // Re-storing h1 makes it the newest.
    cache.set('h1', cache.generation(), { actor: actor('h1'), expiresAt: null });
    cache.set('h4', cache.generation(), { actor: actor('h4'), expiresAt: null });
    expect(cache.size).toBe(3);
    expect(cache.get('h2')).toBeUndefined();
    expect(['h1', 'h3', 'h4'].map((h) => cache.get(h)?.actor.id)).toEqual(['h1', 'h3', 'h4']);
    for (let i = 0; i < 100; i++)
      cache.set(`x${i}`, cache.generation(), { actor: actor(`x${i}`), expiresAt: null });
    expect(cache.size).toBe(3);
    expect(cache.get('x99')).toBeDefined();
  });

  it('hands out a caller nobody can change, and keeps when "last used" was written', () => {
    const cache = new CredentialCache();
    const original = actor('a');
    cache.set('h', cache.generation(), {
      actor: original,
      expiresAt: null,
      lastUsedAt: new Date(5_000),
    });
    const hit = cache.get('h')!;
    expect(() => {
      (hit.actor as { role: string }).role = 'admin';
    }).toThrow(TypeError);
    expect(cache.get('h')?.actor.role).toBe('viewer');
    expect(hit.actor.ability.can('read', 'Member')).toBe(true);
    expect(hit.lastUsedAt).toBe(5_000);
    hit.lastUsedAt = 70_000;
    expect(cache.get('h')?.lastUsedAt).toBe(70_000);
  });
});
