/**
 * A custom role is never deleted from under its holders: a pending invitation holds it too, and
 * a delete racing an assignment either waits and refuses or wins and the assignment is refused
 * (QA pass 4: both used to succeed, leaving holders of a role that no longer existed, who
 * silently got the permissions of the next role made with that slug).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { roles } from '../../src/server/db/schema.js';
import {
  addIdentity,
  bootstrap,
  createSecondOrg,
  DRIVERS,
  startTestPlatform,
  TEST_PASSWORD,
  type Account,
  type TestPlatform,
} from '../helpers/platform.js';

describe.each(DRIVERS)('role holders (%s)', (driver) => {
  let tp: TestPlatform;
  let admin: Account;
  beforeAll(async () => {
    tp = await startTestPlatform(driver);
    admin = await bootstrap(tp);
  });
  afterAll(() => tp?.close());
  const bootstrapOther = () => createSecondOrg(tp);

  const makeRole = async (slug: string) => {
    const res = await admin.client.post('/api/v1/roles', {
      slug,
      name: slug,
      permissions: [{ subject: 'Gateway', action: 'read' }],
    });
    expect(res.status, res.text).toBe(201);
  };

  it('refuses to delete a role a pending invitation grants, naming the invitee', async () => {
    await makeRole('invited-role');
    const invite = await admin.client.post('/api/v1/users', {
      email: 'pending-role@example.com',
      password: TEST_PASSWORD,
      role: 'invited-role',
    });
    expect(invite.status, invite.text).toBe(201);
    const del = await admin.client.delete('/api/v1/roles/invited-role');
    expect(del.status).toBe(409);
    expect(del.body.error.message).toMatch(/still assigned.*revoke the pending invitations/);
    expect(del.body.error.details.invitations).toEqual(['pending-role@example.com']);
  });

  it('/me names a custom role by the name people gave it, not its slug', async () => {
    const made = await admin.client.post('/api/v1/roles', {
      slug: 'people-mgr',
      name: 'People manager',
      permissions: [{ subject: 'Member', action: 'read' }],
    });
    expect(made.status, made.text).toBe(201);
    const bot = await addIdentity(tp, admin, 'people-mgr');
    const me = await bot.client.get('/api/v1/me');
    expect(me.body).toMatchObject({ role: 'people-mgr', roleName: 'People manager' });
  });

  it('lists roles whole: paging parameters are refused, custom roles are capped at 200', async () => {
    const paged = await admin.client.get('/api/v1/roles?limit=1');
    expect(paged.status).toBe(400);
    expect(paged.body.error.message).toMatch(/takes no query parameters: it lists every role/);
    const other = await bootstrapOther();
    const have = (await other.client.get('/api/v1/roles')).body.items.filter(
      (r: { builtIn: boolean }) => !r.builtIn,
    ).length;
    await tp.db.insert(roles).values(
      Array.from({ length: 200 - have - 1 }, (_, i) => ({
        id: randomUUID(),
        orgId: other.orgId,
        slug: `filler-${i}`,
        name: `filler ${i}`,
        permissions: [],
      })),
    );
    const last = await other.client.post('/api/v1/roles', {
      slug: 'the-200th',
      name: 'the 200th',
      permissions: [],
    });
    expect(last.status, last.text).toBe(201);
    const over = await other.client.post('/api/v1/roles', {
      slug: 'one-too-many',
      name: 'one too many',
      permissions: [],
    });
    expect(over.status).toBe(409);
    expect(over.body.error.message).toMatch(/at most 200 custom roles/);
    expect((await other.client.get('/api/v1/roles')).body.items).toHaveLength(203);
  });

  it('a delete racing an assignment never leaves a holder of a missing role', async () => {
    const bot = await admin.client.post('/api/v1/identities', { name: 'race-bot', role: 'viewer' });
    expect(bot.status).toBe(201);
    for (let round = 0; round < 8; round++) {
      const slug = `race-${round}`;
      await makeRole(slug);
      const [del, assign] = await Promise.all([
        admin.client.delete(`/api/v1/roles/${slug}`),
        admin.client.patch(`/api/v1/identities/${bot.body.id}`, { role: slug }),
      ]);
      const role = (await admin.client.get(`/api/v1/identities/${bot.body.id}`)).body.role;
      const exists = (await admin.client.get('/api/v1/roles')).body.items.some(
        (r: { slug: string }) => r.slug === slug,
      );
      // Exactly one of the two won, and the identity's role exists.
      expect([del.status, assign.status].sort(), `round ${round}`).toEqual(
        del.status === 204 ? [204, 422] : [200, 409],
      );
      if (role === slug) expect(exists, `round ${round}`).toBe(true);
      // Back to a built-in role, so the next round's delete is not refused for this holder.
      await admin.client.patch(`/api/v1/identities/${bot.body.id}`, { role: 'viewer' });
      if (exists) expect((await admin.client.delete(`/api/v1/roles/${slug}`)).status).toBe(204);
    }
  });
});
