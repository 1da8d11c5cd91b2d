/**
 * QA4 F-invite-pw: the admin who invites a new e-mail chooses its password. Until the person
 * replaces it, their sessions may only read /me, change the password and sign out, so the
 * admin who knows it cannot act as them, least of all in another organization that invited
 * the same person.
 */
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { users } from '../../src/server/db/schema.js';
import { createOrganization } from '../../src/server/orgs/service.js';
import {
  api,
  bootstrap,
  createSecondOrg,
  DRIVERS,
  login,
  startTestPlatform,
  TEST_PASSWORD,
  type Account,
  type ApiResponse,
  type TestPlatform,
} from '../helpers/platform.js';

const brief = (res: ApiResponse) => `${res.status} ${res.text.slice(0, 300)}`;

const GATE_MESSAGE =
  'Choose your own password first: the one you signed in with was set by the admin who invited you. ' +
  'POST /api/v1/auth/password, or sign in to the web UI.';

function expectGated(res: ApiResponse): void {
  expect(res.status, brief(res)).toBe(403);
  expect(res.body.error).toEqual({ code: 'password_change_required', message: GATE_MESSAGE });
}

/** A login attempt that may fail, with the per-IP budget reset as the helpers do. */
async function tryLogin(tp: TestPlatform, body: Record<string, string>): Promise<ApiResponse> {
  const res = await api(tp).post('/api/v1/auth/login', body);
  for (const ip of ['127.0.0.1', '::ffff:127.0.0.1', '::1'])
    tp.platform.ctx.limits.loginPerIp.reset(ip);
  return res;
}

describe.each(DRIVERS)('a password chosen by someone else on %s', (driver) => {
  let tp: TestPlatform;
  let acme: Account;

  beforeAll(async () => {
    tp = await startTestPlatform(driver);
    acme = await bootstrap(tp, { organizationName: 'Acme' });
  });
  afterAll(() => tp?.close());

  it('the bootstrap admin chose their own: no change asked', async () => {
    const signIn = await login(tp, acme.email, acme.password);
    expect(signIn.body.passwordChangeRequired).toBe(false);
    const me = await acme.client.get('/api/v1/me');
    expect(me.body.passwordChangeRequired).toBe(false);
  });

  it('an invited person must change it before anything else; then the inviter’s no longer works', async () => {
    const email = `first-${driver}@acme.example`;
    const invited = await acme.client.post('/api/v1/users', {
      email,
      password: 'acme-chosen-password',
      role: 'admin',
    });
    expect(invited.status, brief(invited)).toBe(201);

    const signIn = await login(tp, email, 'acme-chosen-password');
    expect(signIn.body.passwordChangeRequired).toBe(true);
    expect(signIn.body.organization.id).toBe(acme.orgId);
    const person = api(tp, signIn.token);

    const me = await person.get('/api/v1/me');
    expect(me.status, brief(me)).toBe(200);
    expect(me.body).toMatchObject({ passwordChangeRequired: true, role: 'admin' });

    // Everything else, whatever the role allows: reads, writes, switching, invitations.
    expectGated(await person.get('/api/v1/gateways'));
    expectGated(await person.get('/api/v1/users'));
    expectGated(await person.get('/api/v1/me/invitations'));
    expectGated(
      await person.post('/api/v1/users', {
        email: 'x@acme.example',
        password: TEST_PASSWORD,
        role: 'viewer',
      }),
    );
    expectGated(
      await person.post('/api/v1/auth/switch-organization', { organizationId: acme.orgId }),
    );
    expectGated(await person.post('/api/v1/identities', { name: 'nope', role: 'viewer' }));

    // Signing out is allowed (a second session of the same person).
    const other = await login(tp, email, 'acme-chosen-password');
    expect((await api(tp, other.token).post('/api/v1/auth/logout')).status).toBe(204);

    // The same rules as any change: the admin's password cannot be kept.
    const same = await person.post('/api/v1/auth/password', {
      currentPassword: 'acme-chosen-password',
      newPassword: 'acme-chosen-password',
    });
    expect(same.status).toBe(400);
    const changed = await person.post('/api/v1/auth/password', {
      currentPassword: 'acme-chosen-password',
      newPassword: 'my-very-own-password',
    });
    expect(changed.status, brief(changed)).toBe(200);

    // This session goes on, unrestricted.
    expect((await person.get('/api/v1/me')).body.passwordChangeRequired).toBe(false);
    expect((await person.get('/api/v1/gateways')).status).toBe(200);
    // The inviter's password signs in no more; the person's own does, with no change asked.
    const old = await tryLogin(tp, { email, password: 'acme-chosen-password' });
    expect(old.status).toBe(401);
    const own = await login(tp, email, 'my-very-own-password');
    expect(own.body.passwordChangeRequired).toBe(false);
    const [row] = await tp.db.select().from(users).where(eq(users.email, email));
    expect(row?.passwordChangeRequired).toBe(false);
    // Audited as any change.
    const log = await acme.client.get('/api/v1/audit-logs?event=user.password-changed');
    expect(log.body.items.map((e: { actor: { name: string } }) => e.actor.name)).toContain(email);
  });

  it('QA4 Beta scenario: the inviter cannot use the password to act as the person in another org', async () => {
    const email = `new-${driver}@acme.example`;
    // Acme's admin makes the account, choosing its password.
    const acmeInvite = await acme.client.post('/api/v1/users', {
      email,
      password: 'new-user-password',
      role: 'viewer',
    });
    expect(acmeInvite.status).toBe(201);
    // Beta invites the same e-mail as admin; its admin passes the code to the real person.
    const beta = await createSecondOrg(tp, `Beta ${driver}`);
    const betaInvite = await beta.client.post('/api/v1/users', {
      email,
      password: 'beta-chosen-password',
      role: 'admin',
    });
    expect(betaInvite.status).toBe(201);

    // Acme's admin signs in with the password they chose: only a restricted session...
    const asThem = await login(tp, email, 'new-user-password');
    expect(asThem.body.passwordChangeRequired).toBe(true);
    const pending = asThem.body.pendingInvitations as {
      id: string;
      organization: { id: string };
    }[];
    const toBeta = pending.find((i) => i.organization.id === beta.orgId);
    expect(toBeta).toBeDefined();
    // ...that cannot accept Beta's invitation, even with the right code,
    expectGated(
      await api(tp, asThem.token).post(`/api/v1/me/invitations/${toBeta!.id}/accept`, {
        code: betaInvite.body.acceptCode,
      }),
    );
    // nor sign in to Beta (not a member).
    expect(
      (
        await tryLogin(tp, {
          email,
          password: 'new-user-password',
          organizationId: beta.orgId,
        })
      ).status,
    ).toBe(401);

    // The real person signs in, chooses a password and accepts Beta's invitation.
    const real = await login(tp, email, 'new-user-password');
    const person = api(tp, real.token);
    expect(
      (
        await person.post('/api/v1/auth/password', {
          currentPassword: 'new-user-password',
          newPassword: 'only-the-person-knows',
        })
      ).status,
    ).toBe(200);
    const accepted = await person.post(`/api/v1/me/invitations/${toBeta!.id}/accept`, {
      code: betaInvite.body.acceptCode,
    });
    expect(accepted.status, brief(accepted)).toBe(200);
    expect(accepted.body.role).toBe('admin');

    // Acme's admin, who still knows the old password, gets nowhere: not into Beta as admin,
    // and the restricted session from before ended with the change.
    const intoBeta = await tryLogin(tp, {
      email,
      password: 'new-user-password',
      organizationId: beta.orgId,
    });
    expect(intoBeta.status).toBe(401);
    expect(intoBeta.body.error.message).toBe('Email or password is incorrect.');
    expect((await api(tp, asThem.token).get('/api/v1/me')).status).toBe(401);
    // The person is Beta's admin with their own password.
    const own = await login(tp, email, 'only-the-person-knows', beta.orgId);
    expect(own.body).toMatchObject({ role: 'admin', passwordChangeRequired: false });
  });

  it('gatepool admin create-org: a new admin got the operator’s password and must change it; an existing user keeps theirs', async () => {
    const made = await createOrganization(tp.platform.ctx.db, tp.platform.ctx.audit, {
      name: `Ops ${driver}`,
      adminEmail: `ops-${driver}@ops.example`,
      adminPassword: 'operator-given-pw',
    });
    tp.platform.ctx.credentials.clear();
    const signIn = await login(tp, `ops-${driver}@ops.example`, 'operator-given-pw', made.orgId);
    expect(signIn.body.passwordChangeRequired).toBe(true);
    expectGated(await api(tp, signIn.token).get('/api/v1/organization'));

    // An existing user made admin of another organization: nothing changes for them.
    await createOrganization(tp.platform.ctx.db, tp.platform.ctx.audit, {
      name: `Ops2 ${driver}`,
      adminEmail: acme.email,
    });
    const again = await login(tp, acme.email, acme.password);
    expect(again.body.passwordChangeRequired).toBe(false);
  });
});
