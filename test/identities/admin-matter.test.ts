/**
 * Machine identities are an admin matter (QA3 F13): their tokens are credentials that outlive a
 * person's membership, so a built-in member may not make them, an identity may not renew its
 * own credential, and every identity says who created it.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { identities } from '../../src/server/db/schema.js';
import {
  addIdentity,
  addUser,
  bootstrap,
  DRIVERS,
  type Account,
  type Json,
  type TestPlatform,
  startTestPlatform,
} from '../helpers/platform.js';

describe.each(DRIVERS)('machine identities are an admin matter on %s', (driver) => {
  let tp: TestPlatform;
  let admin: Account;

  beforeAll(async () => {
    tp = await startTestPlatform(driver);
    admin = await bootstrap(tp);
  });
  afterAll(() => tp?.close());

  it('a member reads identities but cannot create, change, delete or mint tokens for them (QA repro)', async () => {
    const member = await addUser(tp, admin, 'member');
    const existing = await addIdentity(tp, admin, 'member');

    const created = await member.client.post('/api/v1/identities', {
      name: 'backdoor',
      role: 'member',
    });
    expect(created.status).toBe(403);
    expect(created.body.error.message).toContain('Identity:create');
    const mint = await member.client.post(`/api/v1/identities/${existing.id}/tokens`, {
      ttlSeconds: 2592000,
    });
    expect(mint.status).toBe(403);
    expect(mint.body.token).toBeUndefined();
    expect(mint.body.error.message).toContain('Identity:edit');
    expect(
      (await member.client.patch(`/api/v1/identities/${existing.id}`, { role: 'viewer' })).status,
    ).toBe(403);
    expect(
      (await member.client.delete(`/api/v1/identities/${existing.id}/tokens/${existing.tokenId}`))
        .status,
    ).toBe(403);
    expect((await member.client.delete(`/api/v1/identities/${existing.id}`)).status).toBe(403);

    const list = await member.client.get('/api/v1/identities');
    expect(list.status).toBe(200);
    expect(list.body.items.map((i: Json) => i.id)).toContain(existing.id);
    expect((await member.client.get(`/api/v1/identities/${existing.id}`)).status).toBe(200);
    expect((await member.client.get(`/api/v1/identities/${existing.id}/tokens`)).status).toBe(200);

    // The role itself says so.
    const roles = (await admin.client.get('/api/v1/roles')).body.items;
    const perms = roles
      .find((r: Json) => r.slug === 'member')
      .permissions.filter((p: Json) => p.subject === 'Identity')
      .map((p: Json) => p.action);
    expect(perms).toEqual(['read']);
  });

  it('a custom role can still grant managing identities', async () => {
    const role = await admin.client.post('/api/v1/roles', {
      slug: 'bot-keeper',
      name: 'Bot keeper',
      permissions: (['read', 'create', 'edit', 'delete'] as const).map((action) => ({
        subject: 'Identity',
        action,
      })),
    });
    expect(role.status).toBe(201);
    const keeper = await addUser(tp, admin, 'bot-keeper');
    const made = await keeper.client.post('/api/v1/identities', {
      name: 'kept',
      role: 'bot-keeper',
    });
    expect(made.status).toBe(201);
    expect(made.body.createdBy).toEqual({ type: 'user', id: keeper.id, name: keeper.email });
    const tok = await keeper.client.post(`/api/v1/identities/${made.body.id}/tokens`, {});
    expect(tok.status).toBe(201);
  });

  it('an identity cannot mint tokens for itself, even as admin; others may', async () => {
    const bot = await addIdentity(tp, admin, 'admin');
    const self = await bot.client.post(`/api/v1/identities/${bot.id}/tokens`, {});
    expect(self.status).toBe(403);
    expect(self.body.token).toBeUndefined();
    expect(self.body.error.message).toMatch(/cannot mint access tokens for itself/);
    const tokens = await admin.client.get(`/api/v1/identities/${bot.id}/tokens`);
    expect(tokens.body.items).toHaveLength(1);

    // An admin (person) renews it; another admin identity may too.
    expect((await admin.client.post(`/api/v1/identities/${bot.id}/tokens`, {})).status).toBe(201);
    const other = await addIdentity(tp, admin, 'admin');
    expect((await other.client.post(`/api/v1/identities/${bot.id}/tokens`, {})).status).toBe(201);
    // It still revokes its own tokens (logging out is always allowed).
    expect(
      (await bot.client.delete(`/api/v1/identities/${bot.id}/tokens/${bot.tokenId}`)).status,
    ).toBe(204);
  });

  it('records and shows who created an identity, and audits it', async () => {
    const made = await admin.client.post('/api/v1/identities', { name: 'ci', role: 'viewer' });
    expect(made.status).toBe(201);
    const by = { type: 'user', id: admin.id, name: admin.email };
    expect(made.body.createdBy).toEqual(by);
    expect((await admin.client.get(`/api/v1/identities/${made.body.id}`)).body.createdBy).toEqual(
      by,
    );
    const listed = (await admin.client.get('/api/v1/identities?limit=200')).body.items.find(
      (i: Json) => i.id === made.body.id,
    );
    expect(listed.createdBy).toEqual(by);

    const bot = await addIdentity(tp, admin, 'admin');
    const child = await bot.client.post('/api/v1/identities', { name: 'child', role: 'viewer' });
    expect(child.body.createdBy).toEqual({ type: 'identity', id: bot.id, name: bot.name });

    const audit = await admin.client.get('/api/v1/audit-logs?event=identity.create&limit=200');
    const entry = audit.body.items.find((e: Json) => e.metadata.identityId === made.body.id);
    expect(entry.actor).toEqual(by);

    // Identities made before createdBy was recorded say so (null), rather than guess.
    const oldId = randomUUID();
    await tp.db
      .insert(identities)
      .values({ id: oldId, orgId: admin.orgId, name: 'legacy', role: 'viewer' });
    expect((await admin.client.get(`/api/v1/identities/${oldId}`)).body.createdBy).toBeNull();
  });

  it('refuses identity names that pass for a person or hide text (QA3 F14); old names stay valid', async () => {
    const refused: [string, RegExp][] = [
      ['you@example.com', /must not contain "@"/],
      ['you\uFF20example.com', /must not contain "@"/],
      [' ci', /must not start or end with spaces/],
      ['ci ', /must not start or end with spaces/],
      ['ci\tbot', /must not contain control characters/],
      ['ci\u007Fbot', /must not contain control characters/],
      ['ci\u200Bbot', /invisible, text-direction or line-break/],
      ['admin\u202Etoor', /invisible, text-direction or line-break/],
      ['ci\u2028bot', /invisible, text-direction or line-break/],
      ['   ', /must not be empty/],
    ];
    for (const [name, rule] of refused) {
      const res = await admin.client.post('/api/v1/identities', { name, role: 'viewer' });
      expect(res.status, JSON.stringify(name)).toBe(400);
      expect(res.body.error.code).toBe('validation_failed');
      expect(res.body.error.message).toMatch(rule);
    }
    // Ordinary names, spaces and non-ASCII letters inside included, are fine.
    for (const name of ['ci-bot', 'Deploy bot (prod)', 'ü-bot']) {
      expect((await admin.client.post('/api/v1/identities', { name, role: 'viewer' })).status).toBe(
        201,
      );
    }

    // Names differing only in case would read as one actor (the audit filter ignores case).
    const upper = await admin.client.post('/api/v1/identities', { name: 'CI-BOT', role: 'viewer' });
    expect(upper.status).toBe(409);
    expect(upper.body.error.message).toBe(
      'An identity named "ci-bot" already exists (names are compared ignoring case).',
    );
    const same = await admin.client.post('/api/v1/identities', { name: 'ci-bot', role: 'viewer' });
    expect(same.status).toBe(409);
    expect(same.body.error.message).toBe('An identity named "ci-bot" already exists.');

    // Token names are shown beside them: no hidden or reordered text there either.
    const bot = (await admin.client.post('/api/v1/identities', { name: 'tok-bot', role: 'viewer' }))
      .body;
    for (const name of ['n\u202Eevil', 'a\u200Bb', 'a\nb']) {
      const res = await admin.client.post(`/api/v1/identities/${bot.id}/tokens`, { name });
      expect(res.status, JSON.stringify(name)).toBe(400);
      expect(res.body.error.message).toMatch(/control, invisible, text-direction or line-break/);
    }
    const ok = await admin.client.post(`/api/v1/identities/${bot.id}/tokens`, { name: 'ci token' });
    expect(ok.status).toBe(201);

    // Renaming follows the same rule; an identity named before it keeps working.
    const legacyId = randomUUID();
    await tp.db
      .insert(identities)
      .values({ id: legacyId, orgId: admin.orgId, name: 'ops@example.com', role: 'viewer' });
    const rename = await admin.client.patch(`/api/v1/identities/${legacyId}`, {
      name: 'new@example.com',
    });
    expect(rename.status).toBe(400);
    expect(rename.body.error.message).toMatch(/must not contain "@"/);
    const role = await admin.client.patch(`/api/v1/identities/${legacyId}`, { role: 'member' });
    expect(role.status).toBe(200);
    expect(role.body).toMatchObject({ name: 'ops@example.com', role: 'member' });
    const tok = await admin.client.post(`/api/v1/identities/${legacyId}/tokens`, {});
    expect(tok.status).toBe(201);
    expect(
      (await admin.client.patch(`/api/v1/identities/${legacyId}`, { name: 'ops-bot' })).body.name,
    ).toBe('ops-bot');
  });
});
