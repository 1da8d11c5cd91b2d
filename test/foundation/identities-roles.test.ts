/** Members, machine identities and their access tokens, custom roles. */
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashToken } from '../../src/server/auth/tokens.js';
import { identityAccessTokens } from '../../src/server/db/schema.js';
import {
  addIdentity,
  addUser,
  api,
  bootstrap,
  createSecondOrg,
  DRIVERS,
  login,
  startTestPlatform,
  TEST_PASSWORD,
  type Account,
  type TestPlatform,
} from '../helpers/platform.js';

describe.each(DRIVERS)('members, identities and roles on %s', (driver) => {
  let tp: TestPlatform;
  let admin: Account;

  beforeAll(async () => {
    tp = await startTestPlatform(driver);
    admin = await bootstrap(tp);
  });
  afterAll(() => tp?.close());

  /** A user whose custom role is the built-in member plus managing identities (F13). */
  let managerRole: Promise<void> | undefined;
  async function identityManager() {
    managerRole ??= (async () => {
      const member = (await admin.client.get('/api/v1/roles')).body.items.find(
        (r: { slug: string }) => r.slug === 'member',
      );
      const res = await admin.client.post('/api/v1/roles', {
        slug: 'identity-manager',
        name: 'Identity manager',
        permissions: [
          ...member.permissions,
          ...['create', 'edit', 'delete'].map((action) => ({ subject: 'Identity', action })),
        ],
      });
      expect(res.status).toBe(201);
    })();
    await managerRole;
    return addUser(tp, admin, 'identity-manager');
  }

  describe('members', () => {
    it('adds, lists, pages, changes and removes members', async () => {
      const email = 'Member.One@Example.com';
      const created = await admin.client.post('/api/v1/users', {
        email,
        password: TEST_PASSWORD,
        role: 'member',
      });
      expect(created.status).toBe(201);
      expect(created.body).toMatchObject({
        email: 'member.one@example.com',
        role: 'member',
        status: 'pending',
      });
      expect(created.body).not.toHaveProperty('password');
      expect(created.body).not.toHaveProperty('passwordHash');
      const invitedTwice = await admin.client.post('/api/v1/users', {
        email,
        password: TEST_PASSWORD,
        role: 'viewer',
      });
      expect(invitedTwice.status).toBe(409);
      expect(invitedTwice.body.error.message).toMatch(/pending invitation/);
      const unknownRole = await admin.client.post('/api/v1/users', {
        email: 'x@example.com',
        password: TEST_PASSWORD,
        role: 'wizard',
      });
      expect(unknownRole.status).toBe(422);
      // The new account's first sign-in accepts the invitation.
      const userId = (await login(tp, email, TEST_PASSWORD)).body.user.id as string;
      const dup = await admin.client.post('/api/v1/users', {
        email,
        password: TEST_PASSWORD,
        role: 'viewer',
      });
      expect(dup.status).toBe(409);
      expect(dup.body.error.message).toMatch(/already a member/);

      const first = await admin.client.get('/api/v1/users?limit=1');
      expect(first.body.items).toHaveLength(1);
      expect(first.body.nextCursor).toEqual(expect.any(String));
      const second = await admin.client.get(
        `/api/v1/users?limit=1&cursor=${first.body.nextCursor}`,
      );
      expect(second.body.items[0].id).not.toBe(first.body.items[0].id);
      const all = await admin.client.get('/api/v1/users');
      expect(all.body.items.map((u: { email: string }) => u.email)).toEqual(
        expect.arrayContaining([admin.email, 'member.one@example.com']),
      );
      expect(JSON.stringify(all.body)).not.toMatch(/scrypt|passwordHash/);

      const patched = await admin.client.patch(`/api/v1/users/${userId}`, {
        role: 'viewer',
        name: 'Mem',
      });
      expect(patched.status).toBe(200);
      expect(patched.body).toMatchObject({ role: 'viewer', name: 'Mem' });
      const { token } = await login(tp, email, TEST_PASSWORD);
      expect((await api(tp, token).get('/api/v1/me')).body.role).toBe('viewer');

      expect((await admin.client.delete(`/api/v1/users/${userId}`)).status).toBe(204);
      expect((await admin.client.get(`/api/v1/users/${userId}`)).status).toBe(404);
      expect((await api(tp, token).get('/api/v1/me')).status).toBe(401);
    });

    it('keeps the last admin', async () => {
      expect(
        (await admin.client.patch(`/api/v1/users/${admin.id}`, { role: 'member' })).status,
      ).toBe(409);
      expect((await admin.client.delete(`/api/v1/users/${admin.id}`)).status).toBe(409);
    });

    it('lets nobody grant a role stronger than their own', async () => {
      const member = await identityManager();
      // It may create identities, but not admin ones.
      const escalate = await member.client.post('/api/v1/identities', {
        name: 'sneaky',
        role: 'admin',
      });
      expect(escalate.status).toBe(403);
      expect(escalate.body.error.details.missing).toEqual(
        expect.arrayContaining(['Member:create']),
      );
      expect(
        (await member.client.post('/api/v1/identities', { name: 'fine', role: 'viewer' })).status,
      ).toBe(201);
    });
  });

  describe('managing someone stronger', () => {
    it('an identity manager cannot mint tokens for, change, delete or revoke an admin identity', async () => {
      const member = await identityManager();
      const strong = await addIdentity(tp, admin, 'admin');
      const mint = await member.client.post(`/api/v1/identities/${strong.id}/tokens`, {});
      expect(mint.status).toBe(403);
      expect(mint.body.token).toBeUndefined();
      expect(mint.body.error.details.missing).toEqual(expect.arrayContaining(['Member:create']));
      expect(
        (await member.client.patch(`/api/v1/identities/${strong.id}`, { name: 'mine' })).status,
      ).toBe(403);
      expect(
        (await member.client.patch(`/api/v1/identities/${strong.id}`, { role: 'viewer' })).status,
      ).toBe(403);
      expect(
        (await member.client.delete(`/api/v1/identities/${strong.id}/tokens/${strong.tokenId}`))
          .status,
      ).toBe(403);
      expect((await member.client.delete(`/api/v1/identities/${strong.id}`)).status).toBe(403);
      // Untouched.
      expect((await strong.client.get('/api/v1/me')).body).toMatchObject({
        role: 'admin',
        name: strong.name,
      });

      // Identities at or below its own level stay manageable.
      const weak = await addIdentity(tp, admin, 'viewer');
      expect((await member.client.post(`/api/v1/identities/${weak.id}/tokens`, {})).status).toBe(
        201,
      );
      expect(
        (await member.client.patch(`/api/v1/identities/${weak.id}`, { name: 'weak-renamed' }))
          .status,
      ).toBe(200);
      expect((await member.client.delete(`/api/v1/identities/${weak.id}`)).status).toBe(204);
    });

    it('a people manager cannot demote or remove an admin', async () => {
      const perms = (['read', 'create', 'edit', 'delete'] as const).map((action) => ({
        subject: 'Member',
        action,
      }));
      expect(
        (
          await admin.client.post('/api/v1/roles', {
            slug: 'people',
            name: 'People',
            permissions: perms,
          })
        ).status,
      ).toBe(201);
      const manager = await addUser(tp, admin, 'people');
      const otherAdmin = await addUser(tp, admin, 'admin');
      expect(
        (await manager.client.patch(`/api/v1/users/${otherAdmin.id}`, { role: 'people' })).status,
      ).toBe(403);
      expect(
        (await manager.client.patch(`/api/v1/users/${otherAdmin.id}`, { name: 'x' })).status,
      ).toBe(403);
      expect((await manager.client.delete(`/api/v1/users/${otherAdmin.id}`)).status).toBe(403);
      expect((await otherAdmin.client.get('/api/v1/me')).body.role).toBe('admin');
      // So is a viewer: viewers read more than this role does (the grant rule, applied to holders).
      const viewer = await addUser(tp, admin, 'viewer');
      expect((await manager.client.delete(`/api/v1/users/${viewer.id}`)).status).toBe(403);
      // Peers stay manageable.
      const peer = await addUser(tp, admin, 'people');
      expect(
        (await manager.client.patch(`/api/v1/users/${peer.id}`, { name: 'Peer' })).status,
      ).toBe(200);
      expect((await manager.client.delete(`/api/v1/users/${peer.id}`)).status).toBe(204);
    });

    it('a removed member can be added again', async () => {
      const viewer = await addUser(tp, admin, 'viewer');
      expect((await admin.client.delete(`/api/v1/users/${viewer.id}`)).status).toBe(204);
      const again = await admin.client.post('/api/v1/users', {
        email: viewer.email,
        password: 'a-new-password-123',
        role: 'member',
      });
      expect(again.status).toBe(201);
      const { body } = await login(tp, viewer.email, 'a-new-password-123');
      expect(body.role).toBe('member');
    });
  });

  describe('machine identities and access tokens', () => {
    it('creates an identity and a token shown once, stored hashed', async () => {
      const created = await admin.client.post('/api/v1/identities', {
        name: 'ci-bot',
        role: 'viewer',
      });
      expect(created.status).toBe(201);
      expect(created.body).toMatchObject({
        name: 'ci-bot',
        role: 'viewer',
        id: expect.any(String),
      });
      expect(
        (await admin.client.post('/api/v1/identities', { name: 'ci-bot', role: 'viewer' })).status,
      ).toBe(409);

      const before = Date.now();
      const tok = await admin.client.post(`/api/v1/identities/${created.body.id}/tokens`, {
        name: 'deploy',
        ttlSeconds: 3600,
      });
      expect(tok.status).toBe(201);
      expect(tok.body).toMatchObject({
        token: expect.stringMatching(/^gpi_/),
        tokenType: 'Bearer',
        name: 'deploy',
      });
      const ttl = Date.parse(tok.body.expiresAt) - before;
      expect(ttl).toBeGreaterThan(3590_000);
      expect(ttl).toBeLessThan(3610_000);

      const list = await admin.client.get(`/api/v1/identities/${created.body.id}/tokens`);
      expect(list.body.items).toHaveLength(1);
      expect(list.body.items[0]).toMatchObject({
        id: tok.body.id,
        name: 'deploy',
        revokedAt: null,
        lastUsedAt: null,
      });
      // Using the token records when it was last used.
      expect((await api(tp, tok.body.token).get('/api/v1/me')).status).toBe(200);
      const used = await admin.client.get(`/api/v1/identities/${created.body.id}/tokens`);
      expect(Date.parse(used.body.items[0].lastUsedAt)).toBeGreaterThanOrEqual(before);
      expect(JSON.stringify(list.body)).not.toContain(tok.body.token);
      const [row] = await tp.db
        .select()
        .from(identityAccessTokens)
        .where(eq(identityAccessTokens.id, tok.body.id));
      expect(row!.tokenHash).toBe(hashToken(tok.body.token));
    });

    it('acts as the identity, with its role, within exactly its organization', async () => {
      const bot = await addIdentity(tp, admin, 'viewer');
      const me = await bot.client.get('/api/v1/me');
      expect(me.status).toBe(200);
      expect(me.body).toMatchObject({
        type: 'identity',
        id: bot.id,
        name: bot.name,
        role: 'viewer',
      });
      expect(me.body.organization.id).toBe(admin.orgId);
      expect((await bot.client.get('/api/v1/users')).status).toBe(200);
      // viewer: no writes
      expect(
        (await bot.client.post('/api/v1/identities', { name: 'child', role: 'viewer' })).status,
      ).toBe(403);

      const other = await createSecondOrg(tp);
      const theirs = await addIdentity(tp, other, 'admin');
      // Our identity does not see their org; theirs does not see ours.
      expect((await bot.client.get(`/api/v1/identities/${theirs.id}`)).status).toBe(404);
      expect((await theirs.client.get(`/api/v1/identities/${bot.id}`)).status).toBe(404);
      const theirList = await theirs.client.get('/api/v1/identities');
      expect(theirList.body.items.map((i: { id: string }) => i.id)).toEqual([theirs.id]);
      // Nor can it log in to switch organizations: an identity token is bound to one org.
      expect((await theirs.client.get('/api/v1/me')).body.organization.id).toBe(other.orgId);
      // An admin identity can act in its own org.
      const made = await theirs.client.post('/api/v1/identities', {
        name: 'made-by-bot',
        role: 'viewer',
      });
      expect(made.status).toBe(201);
      expect((await other.client.get(`/api/v1/identities/${made.body.id}`)).status).toBe(200);
      expect((await admin.client.get(`/api/v1/identities/${made.body.id}`)).status).toBe(404);
    });

    it('expires tokens after their TTL', async () => {
      const bot = await addIdentity(tp, admin, 'viewer', 60);
      expect((await bot.client.get('/api/v1/me')).status).toBe(200);
      await tp.db
        .update(identityAccessTokens)
        .set({ expiresAt: new Date(Date.now() - 1000) })
        .where(eq(identityAccessTokens.id, bot.tokenId));
      // Edited by hand behind the platform: its credential cache would notice only after 30 s.
      tp.platform.ctx.credentials.clear();
      const res = await bot.client.get('/api/v1/me');
      expect(res.status).toBe(401);
      expect(res.body.error.message).toMatch(/expired/);
      expect(
        (await admin.client.post(`/api/v1/identities/${bot.id}/tokens`, { ttlSeconds: 59 })).status,
      ).toBe(400);
      expect(
        (
          await admin.client.post(`/api/v1/identities/${bot.id}/tokens`, {
            ttlSeconds: 400 * 86400,
          })
        ).status,
      ).toBe(400);
    });

    it("pages an identity's tokens newest first, without the old cut at 500", async () => {
      const bot = await addIdentity(tp, admin, 'viewer');
      for (let i = 0; i < 4; i++)
        expect((await admin.client.post(`/api/v1/identities/${bot.id}/tokens`, {})).status).toBe(
          201,
        );
      const seen: string[] = [];
      let cursor: string | null = null;
      for (let i = 0; i < 10; i++) {
        const page = await admin.client.get(
          `/api/v1/identities/${bot.id}/tokens?limit=2${cursor ? `&cursor=${cursor}` : ''}`,
        );
        expect(page.status).toBe(200);
        expect(page.body.items.length).toBeLessThanOrEqual(2);
        seen.push(...page.body.items.map((t: { id: string }) => t.id));
        cursor = page.body.nextCursor;
        if (!cursor) break;
      }
      expect(seen).toHaveLength(5);
      expect(new Set(seen).size).toBe(5);
      expect(seen.at(-1)).toBe(bot.tokenId); // the first token made is the last listed
      const all = await admin.client.get(`/api/v1/identities/${bot.id}/tokens`);
      expect(all.body.items.map((t: { id: string }) => t.id)).toEqual(seen);
      expect(all.body.nextCursor).toBeNull();
    });

    it('revokes tokens (once), by API and by logout, and with the identity', async () => {
      const bot = await addIdentity(tp, admin, 'member');
      const second = await admin.client.post(`/api/v1/identities/${bot.id}/tokens`, {});
      const path = `/api/v1/identities/${bot.id}/tokens/${bot.tokenId}`;
      expect((await admin.client.delete(path)).status).toBe(204);
      expect((await bot.client.get('/api/v1/me')).status).toBe(401);
      expect((await admin.client.delete(path)).status).toBe(404);
      const list = await admin.client.get(`/api/v1/identities/${bot.id}/tokens`);
      const revoked = list.body.items.find((t: { id: string }) => t.id === bot.tokenId);
      expect(revoked.revokedAt).toEqual(expect.any(String));

      // The other token still works until it logs itself out.
      const other = api(tp, second.body.token);
      expect((await other.get('/api/v1/me')).status).toBe(200);
      expect((await other.post('/api/v1/auth/logout')).status).toBe(204);
      expect((await other.get('/api/v1/me')).status).toBe(401);

      const third = await admin.client.post(`/api/v1/identities/${bot.id}/tokens`, {});
      expect((await api(tp, third.body.token).get('/api/v1/me')).status).toBe(200);
      expect((await admin.client.delete(`/api/v1/identities/${bot.id}`)).status).toBe(204);
      expect((await api(tp, third.body.token).get('/api/v1/me')).status).toBe(401);
      expect((await admin.client.get(`/api/v1/identities/${bot.id}`)).status).toBe(404);
    });

    it('renames an identity and changes its role', async () => {
      const bot = await addIdentity(tp, admin, 'viewer');
      const res = await admin.client.patch(`/api/v1/identities/${bot.id}`, {
        name: 'renamed',
        role: 'member',
      });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ name: 'renamed', role: 'member' });
      expect((await bot.client.get('/api/v1/me')).body.role).toBe('member');
    });
  });

  describe('custom roles', () => {
    it('creates, uses, changes and deletes a custom role; 409 while assigned', async () => {
      const created = await admin.client.post('/api/v1/roles', {
        slug: 'auditor',
        name: 'Auditor',
        description: 'reads the audit log',
        permissions: [
          { subject: 'AuditLog', action: 'read' },
          { subject: 'AuditLog', action: 'read' },
        ],
      });
      expect(created.status).toBe(201);
      expect(created.body).toMatchObject({
        slug: 'auditor',
        builtIn: false,
        permissions: [{ subject: 'AuditLog', action: 'read' }],
      });
      expect(
        (
          await admin.client.post('/api/v1/roles', {
            slug: 'auditor',
            name: 'Again',
            permissions: [],
          })
        ).status,
      ).toBe(409);

      const roles = await admin.client.get('/api/v1/roles');
      const slugs = roles.body.items.map((r: { slug: string }) => r.slug);
      expect(slugs.slice(0, 3)).toEqual(['admin', 'member', 'viewer']);
      expect(slugs).toContain('auditor');
      expect(roles.body.vocabulary.GatewayPool).toEqual([
        'list',
        'create',
        'edit',
        'delete',
        'attach',
      ]);

      const user = await addUser(tp, admin, 'auditor');
      expect((await user.client.get('/api/v1/audit-logs')).status).toBe(200);
      const denied = await user.client.get('/api/v1/users');
      expect(denied.status).toBe(403);
      expect(denied.body.error.message).toContain('Member:read');

      const patched = await admin.client.patch('/api/v1/roles/auditor', {
        permissions: [
          { subject: 'AuditLog', action: 'read' },
          { subject: 'Member', action: 'read' },
        ],
      });
      expect(patched.status).toBe(200);
      expect(patched.body.permissions).toHaveLength(2);
      expect((await user.client.get('/api/v1/users')).status).toBe(200);

      const bot = await addIdentity(tp, admin, 'auditor');
      const inUse = await admin.client.delete('/api/v1/roles/auditor');
      expect(inUse.status).toBe(409);
      expect(inUse.body.error.details).toEqual({
        users: [user.email],
        identities: [bot.name],
        invitations: [],
      });

      expect((await admin.client.delete(`/api/v1/users/${user.id}`)).status).toBe(204);
      expect((await admin.client.delete('/api/v1/roles/auditor')).status).toBe(409);
      expect((await admin.client.delete(`/api/v1/identities/${bot.id}`)).status).toBe(204);
      expect((await admin.client.delete('/api/v1/roles/auditor')).status).toBe(204);
      expect((await admin.client.delete('/api/v1/roles/auditor')).status).toBe(404);
    });

    it('changing or deleting a role needs every permission it has, before and after (issue 12)', async () => {
      // A strong custom role held by a powerful identity.
      const strong = await admin.client.post('/api/v1/roles', {
        slug: 'deployer',
        name: 'Deployer',
        permissions: [
          { subject: 'Settings', action: 'edit' },
          { subject: 'Identity', action: 'read' },
        ],
      });
      expect(strong.status).toBe(201);
      const held = await addIdentity(tp, admin, 'deployer');
      // A role editor that may edit roles and identities, but not Settings.
      await admin.client.post('/api/v1/roles', {
        slug: 'role-editor',
        name: 'Role editor',
        permissions: [
          { subject: 'Role', action: 'read' },
          { subject: 'Role', action: 'edit' },
          { subject: 'Role', action: 'delete' },
          { subject: 'Identity', action: 'read' },
          { subject: 'Identity', action: 'edit' },
        ],
      });
      const editor = await addUser(tp, admin, 'role-editor');
      // Stripping Settings:edit would make the identity manageable, then mintable: refused.
      const strip = await editor.client.patch('/api/v1/roles/deployer', {
        permissions: [{ subject: 'Identity', action: 'read' }],
      });
      expect(strip.status).toBe(403);
      expect(strip.body.error.details.missing).toEqual(['Settings:edit']);
      expect(strip.body.error.message).toContain('Settings:edit');
      const rename = await editor.client.patch('/api/v1/roles/deployer', { name: 'Mine now' });
      expect(rename.status).toBe(403);
      const del = await editor.client.delete('/api/v1/roles/deployer');
      expect(del.status).toBe(403);
      expect(del.body.error.details.missing).toEqual(['Settings:edit']);
      const roles = (await admin.client.get('/api/v1/roles')).body.items;
      expect(roles.find((r: { slug: string }) => r.slug === 'deployer').permissions).toHaveLength(
        2,
      );
      const mint = await editor.client.post(`/api/v1/identities/${held.id}/tokens`, {});
      expect(mint.status).toBe(403);

      // A role within the editor's own permissions it may change.
      await admin.client.post('/api/v1/roles', {
        slug: 'reader',
        name: 'Reader',
        permissions: [{ subject: 'Identity', action: 'read' }],
      });
      const ok = await editor.client.patch('/api/v1/roles/reader', {
        permissions: [
          { subject: 'Identity', action: 'read' },
          { subject: 'Role', action: 'read' },
        ],
      });
      expect(ok.status).toBe(200);
      expect(ok.body.permissions).toHaveLength(2);
      expect((await editor.client.delete('/api/v1/roles/reader')).status).toBe(204);
    });

    it('protects built-in roles and refuses roles stronger than their creator', async () => {
      expect((await admin.client.patch('/api/v1/roles/admin', { name: 'Boss' })).status).toBe(403);
      expect((await admin.client.delete('/api/v1/roles/viewer')).status).toBe(403);
      await admin.client.post('/api/v1/roles', {
        slug: 'role-admin',
        name: 'Role admin',
        permissions: [
          { subject: 'Role', action: 'create' },
          { subject: 'Role', action: 'read' },
        ],
      });
      const roleAdmin = await addUser(tp, admin, 'role-admin');
      const stronger = await roleAdmin.client.post('/api/v1/roles', {
        slug: 'godmode',
        name: 'God',
        permissions: [{ subject: 'Settings', action: 'edit' }],
      });
      expect(stronger.status).toBe(403);
      expect(stronger.body.error.details.missing).toEqual(['Settings:edit']);
    });

    it('names of JavaScript object members are neither subjects nor built-in roles (fuzz F2, F3)', async () => {
      for (const subject of ['toString', '__proto__', 'constructor', 'hasOwnProperty']) {
        const res = await admin.client.post('/api/v1/roles', {
          slug: 'odd-subject',
          name: 'Odd',
          permissions: [{ subject, action: 'read' }],
        });
        expect(res.status).toBe(400);
        expect(res.body.error.message).toContain(`unknown subject "${subject}"`);
      }
      // "constructor" is a well-formed slug, but no role of this org: 422, not a built-in.
      const user = await admin.client.post('/api/v1/users', {
        email: `ctor-${Date.now()}@example.com`,
        password: 'correct-horse-battery',
        role: 'constructor',
      });
      expect(user.status).toBe(422);
      const bot = await admin.client.post('/api/v1/identities', {
        name: 'ctor',
        role: 'constructor',
      });
      expect(bot.status).toBe(422);
    });
  });
});
