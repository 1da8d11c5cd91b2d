/**
 * Adding a person is an invitation (issue 12, cross-org e-mail oracle): the inviting org gets
 * the same answer whether or not the e-mail already has an account, and an existing person
 * joins only by accepting.
 */
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { invitations, users } from '../../src/server/db/schema.js';
import {
  addIdentity,
  addUser,
  api,
  bootstrap,
  createSecondOrg,
  DRIVERS,
  firstSignIn,
  INITIAL_PASSWORD,
  login,
  startTestPlatform,
  TEST_PASSWORD,
  type Account,
  type ApiResponse,
  type Json,
  type TestPlatform,
} from '../helpers/platform.js';

const brief = (res: ApiResponse) => `${res.status} ${res.text.slice(0, 300)}`;

/** Replaces values that differ by nature (ids, times, the e-mail) to compare answer shapes. */
function shape(body: Json): Json {
  return JSON.parse(
    JSON.stringify(body, (k, v: unknown) =>
      ['id', 'email', 'createdAt', 'expiresAt', 'acceptCode'].includes(k) ? typeof v : v,
    ),
  );
}

describe.each(DRIVERS)('invitations on %s', (driver) => {
  let tp: TestPlatform;
  let a: Account; // org A's admin, the inviter
  let b: Account; // org B's admin: an existing person elsewhere
  let codeForB: string; // the acceptance code org A's admin passes on to b

  beforeAll(async () => {
    tp = await startTestPlatform(driver);
    a = await bootstrap(tp, { organizationName: 'Org A' });
    b = await createSecondOrg(tp, 'Org B');
  });
  afterAll(() => tp?.close());

  it('answers the same for an e-mail that exists only in another org and for a new one', async () => {
    const existing = await a.client.post('/api/v1/users', {
      email: b.email,
      password: 'some-password-123',
      role: 'member',
    });
    const fresh = await a.client.post('/api/v1/users', {
      email: 'brand-new@a.example',
      password: INITIAL_PASSWORD,
      role: 'member',
    });
    expect(existing.status, brief(existing)).toBe(201);
    expect(fresh.status, brief(fresh)).toBe(201);
    expect(shape(existing.body)).toEqual(shape(fresh.body));
    expect(Object.keys(existing.body).sort()).toEqual(Object.keys(fresh.body).sort());
    expect(existing.body).toMatchObject({ status: 'pending', role: 'member', email: b.email });
    codeForB = existing.body.acceptCode;
    expect(codeForB).toMatch(/^[A-Za-z0-9_-]{12,}$/);
    expect(fresh.body.acceptCode).not.toBe(codeForB);
    // Only its hash is stored.
    const stored = await tp.db.select().from(invitations);
    expect(JSON.stringify(stored)).not.toContain(codeForB);
    expect(Object.keys(existing.headers).sort()).toEqual(Object.keys(fresh.headers).sort());

    // The org's own lists tell nothing apart either: both are pending, neither is a member.
    const pending = await a.client.get('/api/v1/invitations');
    expect(pending.status).toBe(200);
    const mine = pending.body.items.filter((i: Json) =>
      [b.email, 'brand-new@a.example'].includes(i.email),
    );
    expect(mine).toHaveLength(2);
    expect(shape(mine[0])).toEqual(shape(mine[1]));
    const members = (await a.client.get('/api/v1/users')).body.items.map((u: Json) => u.email);
    expect(members).not.toContain(b.email);
    expect(members).not.toContain('brand-new@a.example');
    // Nor does its audit log.
    const log = (await a.client.get('/api/v1/audit-logs?event=member.invite')).body.items;
    expect(log.map((e: Json) => Object.keys(e.metadata).sort())).toEqual([
      ['email', 'invitationId', 'role'],
      ['email', 'invitationId', 'role'],
    ]);

    // The existing person's password is untouched by the inviter's.
    expect(
      (
        await api(tp).post('/api/v1/auth/login', {
          email: b.email,
          password: 'some-password-123',
        })
      ).status,
    ).toBe(401);
  });

  it('an existing person sees the invitation at sign-in and joins only by accepting', async () => {
    const signIn = await login(tp, b.email, TEST_PASSWORD);
    // Signed into their own org as before, with the invitation on the side.
    expect(signIn.body.organization.id).toBe(b.orgId);
    expect(signIn.body.pendingInvitations).toEqual([
      expect.objectContaining({
        organization: { id: a.orgId, name: 'Org A' },
        role: 'member',
        invitedBy: a.email,
      }),
    ]);
    const person = api(tp, signIn.token);
    const me = await person.get('/api/v1/me');
    expect(me.body.pendingInvitations).toHaveLength(1);
    expect(me.body.organizations).toEqual([{ id: b.orgId, name: 'Org B', role: 'admin' }]);
    const listed = await person.get('/api/v1/me/invitations');
    expect(listed.body.items).toHaveLength(1);
    const invitationId = listed.body.items[0].id as string;

    // Not a member until accepted: logging into org A is refused.
    expect(
      (
        await api(tp).post('/api/v1/auth/login', {
          email: b.email,
          password: TEST_PASSWORD,
          organizationId: a.orgId,
        })
      ).status,
    ).toBe(401);

    // Someone else cannot accept it for them.
    expect(
      (await a.client.post(`/api/v1/me/invitations/${invitationId}/accept`, { code: codeForB }))
        .status,
    ).toBe(404);
    // Holding the account is not enough: the inviter's code is.
    const wrongCode = await person.post(`/api/v1/me/invitations/${invitationId}/accept`, {
      code: 'not-the-code',
    });
    expect(wrongCode.status).toBe(403);
    expect(wrongCode.body.error.message).toMatch(/invitation code is wrong/);
    expect((await person.post(`/api/v1/me/invitations/${invitationId}/accept`, {})).status).toBe(
      400,
    );

    const accepted = await person.post(`/api/v1/me/invitations/${invitationId}/accept`, {
      code: codeForB,
    });
    expect(accepted.status, brief(accepted)).toBe(200);
    expect(accepted.body).toEqual({ organization: { id: a.orgId, name: 'Org A' }, role: 'member' });
    expect(
      (await person.post(`/api/v1/me/invitations/${invitationId}/accept`, { code: codeForB }))
        .status,
    ).toBe(404);
    expect((await person.get('/api/v1/me/invitations')).body.items).toEqual([]);

    const orgs = (await person.get('/api/v1/me')).body.organizations;
    expect(orgs).toEqual(
      expect.arrayContaining([
        { id: b.orgId, name: 'Org B', role: 'admin' },
        { id: a.orgId, name: 'Org A', role: 'member' },
      ]),
    );
    const members = (await a.client.get('/api/v1/users')).body.items;
    expect(members.find((u: Json) => u.email === b.email)).toMatchObject({ role: 'member' });
    expect(
      (await a.client.get('/api/v1/audit-logs?event=member.join')).body.items[0],
    ).toMatchObject({ actor: { type: 'user', id: b.id }, metadata: { email: b.email } });
    // Not visible in org B's log: it happened in A.
    expect((await b.client.get('/api/v1/audit-logs?event=member.join')).body.items).toEqual([]);

    // Inviting a member again is a clear 409 (the inviter can list its own members).
    const again = await a.client.post('/api/v1/users', {
      email: b.email,
      password: TEST_PASSWORD,
      role: 'viewer',
    });
    expect(again.status).toBe(409);
    expect(again.body.error.message).toMatch(/already a member/);
  });

  it("a new account's first sign-in with the inviter's password accepts", async () => {
    const signIn = await firstSignIn(tp, 'brand-new@a.example', INITIAL_PASSWORD);
    expect(signIn.body.organization.id).toBe(a.orgId);
    expect(signIn.body.role).toBe('member');
    expect(signIn.body.pendingInvitations).toEqual([]);
    expect((await a.client.get('/api/v1/invitations')).body.items).toEqual([]);
  });

  it('declines, revokes, expires, and refuses machine identities', async () => {
    const person = await createSecondOrg(tp, 'Org C');
    const inviteC = () =>
      a.client.post('/api/v1/users', {
        email: person.email,
        password: TEST_PASSWORD,
        role: 'viewer',
      });

    // Decline.
    const first = await inviteC();
    expect(first.status).toBe(201);
    expect(
      (await person.client.post(`/api/v1/me/invitations/${first.body.id}/decline`)).status,
    ).toBe(204);
    expect(
      (
        await person.client.post(`/api/v1/me/invitations/${first.body.id}/accept`, {
          code: first.body.acceptCode,
        })
      ).status,
    ).toBe(404);
    expect((await a.client.get('/api/v1/invitations')).body.items).toEqual([]);

    // Revoke (admin), once; then the person can no longer accept.
    const second = await inviteC();
    expect(second.status).toBe(201);
    const dup = await inviteC();
    expect(dup.status).toBe(409);
    expect(dup.body.error.message).toMatch(/pending invitation/);
    expect((await a.client.delete(`/api/v1/invitations/${second.body.id}`)).status).toBe(204);
    expect((await a.client.delete(`/api/v1/invitations/${second.body.id}`)).status).toBe(404);
    expect(
      (
        await person.client.post(`/api/v1/me/invitations/${second.body.id}/accept`, {
          code: second.body.acceptCode,
        })
      ).status,
    ).toBe(404);

    // Expired invitations are not shown and cannot be accepted.
    const third = await inviteC();
    await tp.db
      .update(invitations)
      .set({ expiresAt: new Date(Date.now() - 1000) })
      .where(eq(invitations.id, third.body.id));
    expect((await person.client.get('/api/v1/me/invitations')).body.items).toEqual([]);
    expect(
      (
        await person.client.post(`/api/v1/me/invitations/${third.body.id}/accept`, {
          code: third.body.acceptCode,
        })
      ).status,
    ).toBe(404);
    expect((await a.client.delete(`/api/v1/invitations/${third.body.id}`)).status).toBe(204);

    // A machine identity has no invitations and cannot accept one.
    const bot = await addIdentity(tp, a, 'admin');
    expect((await bot.client.get('/api/v1/me/invitations')).body).toEqual({ items: [] });
    const fourth = await inviteC();
    const refused = await bot.client.post(`/api/v1/me/invitations/${fourth.body.id}/accept`, {
      code: fourth.body.acceptCode,
    });
    expect(refused.status).toBe(403);
    expect(refused.body.error.message).toMatch(/machine identities/);
  });

  it("revoking a new account's invitation removes the unused account", async () => {
    const email = 'never-signed-in@a.example';
    const inv = await a.client.post('/api/v1/users', {
      email,
      password: TEST_PASSWORD,
      role: 'viewer',
    });
    expect((await tp.db.select().from(users).where(eq(users.email, email))).length).toBe(1);
    expect((await a.client.delete(`/api/v1/invitations/${inv.body.id}`)).status).toBe(204);
    expect(await tp.db.select().from(users).where(eq(users.email, email))).toEqual([]);
    const res = await api(tp).post('/api/v1/auth/login', { email, password: TEST_PASSWORD });
    expect(res.status).toBe(401);
  });

  it("an account another org's admin made for someone's e-mail cannot join where that e-mail is invited", async () => {
    // Org A's admin makes an account for victim@corp.example (and so knows its password).
    const squat = await a.client.post('/api/v1/users', {
      email: 'victim@corp.example',
      password: 'squatter-password',
      role: 'viewer',
    });
    expect(squat.status).toBe(201);
    // Org E, the victim's real employer, invites that e-mail and gives the code to the victim.
    const e = await createSecondOrg(tp, 'Org E');
    const invite = await e.client.post('/api/v1/users', {
      email: 'victim@corp.example',
      password: TEST_PASSWORD,
      role: 'admin',
    });
    expect(invite.status).toBe(201);
    // The squatter signs in (accepting A's invitation) and sees E's invitation...
    const squatter = await login(tp, 'victim@corp.example', 'squatter-password');
    const pending = squatter.body.pendingInvitations as Json[];
    const toE = pending.find((i) => i.organization.id === e.orgId);
    expect(toE).toBeDefined();
    // ...must first replace the password (which the squatter can, knowing it)...
    expect(
      (
        await api(tp, squatter.token).post('/api/v1/auth/password', {
          currentPassword: 'squatter-password',
          newPassword: 'squatter-password-2',
        })
      ).status,
    ).toBe(200);
    // ...but cannot join E without the code E's admin gave the real person.
    const tries = await api(tp, squatter.token).post(`/api/v1/me/invitations/${toE.id}/accept`, {
      code: squat.body.acceptCode,
    });
    expect(tries.status).toBe(403);
    const eMembers = (await e.client.get('/api/v1/users')).body.items;
    expect(eMembers.map((u: Json) => u.email)).not.toContain('victim@corp.example');
  });

  it('a custom role a pending invitation grants cannot be deleted meanwhile', async () => {
    const role = await a.client.post('/api/v1/roles', {
      slug: 'temp-readers',
      name: 'Temp',
      permissions: [{ subject: 'Member', action: 'read' }],
    });
    expect(role.status).toBe(201);
    const person = await createSecondOrg(tp, 'Org D');
    const inv = await a.client.post('/api/v1/users', {
      email: person.email,
      password: TEST_PASSWORD,
      role: 'temp-readers',
    });
    expect(inv.status).toBe(201);
    // The invitation holds the role (QA4 F-role-del-invite): deleting it is refused.
    const del = await a.client.delete('/api/v1/roles/temp-readers');
    expect(del.status).toBe(409);
    expect(del.body.error.message).toMatch(/revoke the pending invitations/);
    const res = await person.client.post(`/api/v1/me/invitations/${inv.body.id}/accept`, {
      code: inv.body.acceptCode,
    });
    expect(res.status, brief(res)).toBe(200);
    expect(res.body.role).toBe('temp-readers');
  });

  it('needs Member:create to invite (and only roles one holds); viewers may not list invitations', async () => {
    const viewer = await login(tp, 'brand-new@a.example', TEST_PASSWORD);
    const member = api(tp, viewer.token); // a member of org A
    const denied = await member.post('/api/v1/users', {
      email: 'x@a.example',
      password: TEST_PASSWORD,
      role: 'viewer',
    });
    expect(denied.status).toBe(403);
    expect(denied.body.error.message).toContain('Member:create');
    const list = await member.get('/api/v1/invitations');
    expect(list.status).toBe(200); // members hold Member:read
    const revoke = await member.delete(`/api/v1/invitations/${crypto.randomUUID()}`);
    expect(revoke.status).toBe(403);
    expect(revoke.body.error.message).toContain('Member:create');
  });

  it('revoking an invitation needs the standing to grant its role, as managing a member does', async () => {
    // A people manager who holds less than a member: may invite viewers, not touch the rest.
    const made = await a.client.post('/api/v1/roles', {
      slug: 'inviter',
      name: 'Inviter',
      permissions: [
        { subject: 'Member', action: 'read' },
        { subject: 'Member', action: 'create' },
        { subject: 'Member', action: 'edit' },
        { subject: 'Member', action: 'delete' },
      ],
    });
    expect(made.status, brief(made)).toBe(201);
    const inviter = await addUser(tp, a, 'inviter');
    const forMember = await a.client.post('/api/v1/users', {
      email: 'scope-member@a.example',
      password: TEST_PASSWORD,
      role: 'member',
    });
    expect(forMember.status, brief(forMember)).toBe(201);
    const refused = await inviter.client.delete(`/api/v1/invitations/${forMember.body.id}`);
    expect(refused.status, brief(refused)).toBe(403);
    expect(refused.body.error.message).toBe(
      'You cannot manage this invitation: its role "member" has permissions you do not hold.',
    );
    const still = await a.client.get('/api/v1/invitations');
    expect(still.body.items.some((i: { id: string }) => i.id === forMember.body.id)).toBe(true);
    // One for a role the inviter fully holds is theirs to take back.
    const forOwn = await a.client.post('/api/v1/users', {
      email: 'scope-inviter@a.example',
      password: TEST_PASSWORD,
      role: 'inviter',
    });
    expect(forOwn.status).toBe(201);
    const own = await inviter.client.delete(`/api/v1/invitations/${forOwn.body.id}`);
    expect(own.status, brief(own)).toBe(204);
  });
});
