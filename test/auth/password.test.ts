/**
 * A person changes their own password: the current one is required (a wrong one is a field
 * error that counts toward the sign-in limits), the new one follows the same rules as at
 * bootstrap and invitation, the other sessions end while this one stays, and the change is
 * audited without either password.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  addIdentity,
  addUser,
  api,
  bootstrap,
  DRIVERS,
  login,
  TEST_PASSWORD,
  startTestPlatform,
  type Account,
  type TestPlatform,
} from '../helpers/platform.js';

const NEW_PASSWORD = 'a-brand-new-passphrase';

describe.each(DRIVERS)('changing your own password on %s', (driver) => {
  let tp: TestPlatform;
  let admin: Account;

  beforeAll(async () => {
    tp = await startTestPlatform(driver);
    admin = await bootstrap(tp);
  });
  afterAll(() => tp?.close());
  // Each test starts with a fresh sign-in budget for the loopback address.
  afterEach(() => {
    for (const ip of ['127.0.0.1', '::ffff:127.0.0.1', '::1']) {
      tp.platform.ctx.limits.loginPerIp.reset(ip);
      tp.platform.ctx.limits.loginPerAccount.reset(`${ip} ${admin.email}`);
    }
  });

  const change = (token: string, body: Record<string, unknown>) =>
    api(tp, token).post('/api/v1/auth/password', body);

  it('refuses a wrong current password at its field, and audits the attempt', async () => {
    const member = await addUser(tp, admin, 'member');
    const res = await change(member.token, {
      currentPassword: 'not-my-password',
      newPassword: NEW_PASSWORD,
    });
    expect(res.status).toBe(400);
    expect(res.body.error.message).toBe('The current password is incorrect.');
    expect(res.body.error.details.fields).toEqual([
      { field: 'body.currentPassword', message: 'The current password is incorrect.' },
    ]);
    // Unchanged: the old password still signs in, the session still works.
    await login(tp, member.email, TEST_PASSWORD);
    expect((await member.client.get('/api/v1/me')).status).toBe(200);
    const log = (await admin.client.get('/api/v1/audit-logs?event=user.password-change-failed'))
      .body.items;
    expect(log[0]).toMatchObject({ actor: { id: member.id } });
    expect(JSON.stringify(log)).not.toContain('not-my-password');
  });

  it('refuses a weak or unchanged new password with the bootstrap rules', async () => {
    const member = await addUser(tp, admin, 'member');
    const short = await change(member.token, {
      currentPassword: TEST_PASSWORD,
      newPassword: 'short',
    });
    expect(short.status).toBe(400);
    expect(short.body.error.details.fields).toEqual([
      { field: 'body.newPassword', message: 'newPassword must be at least 12 characters' },
    ]);
    const same = await change(member.token, {
      currentPassword: TEST_PASSWORD,
      newPassword: TEST_PASSWORD,
    });
    expect(same.status).toBe(400);
    expect(same.body.error.details.fields[0].field).toBe('body.newPassword');
    const missing = await change(member.token, { newPassword: NEW_PASSWORD });
    expect(missing.status).toBe(400);
    expect(missing.body.error.details.fields[0].field).toBe('body.currentPassword');
  });

  it('changes it: the old one no longer signs in, other sessions end, this one stays; audited', async () => {
    const member = await addUser(tp, admin, 'member');
    const other = await login(tp, member.email, TEST_PASSWORD);
    expect((await api(tp, other.token).get('/api/v1/me')).status).toBe(200);
    const res = await change(member.token, {
      currentPassword: TEST_PASSWORD,
      newPassword: NEW_PASSWORD,
    });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toEqual({ otherSessionsEnded: 1 });
    expect((await member.client.get('/api/v1/me')).status).toBe(200);
    expect((await api(tp, other.token).get('/api/v1/me')).status).toBe(401);
    const old = await api(tp).post('/api/v1/auth/login', {
      email: member.email,
      password: TEST_PASSWORD,
    });
    expect(old.status).toBe(401);
    await login(tp, member.email, NEW_PASSWORD);
    const log = (await admin.client.get('/api/v1/audit-logs?event=user.password-changed')).body
      .items;
    expect(log[0]).toMatchObject({
      actor: { id: member.id },
      event: 'user.password-changed',
      metadata: { otherSessionsEnded: 1 },
    });
    expect(JSON.stringify(log)).not.toContain(NEW_PASSWORD);
    expect(JSON.stringify(log)).not.toContain(TEST_PASSWORD);
  });

  it('wrong current passwords count toward the sign-in limit (429 after five)', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++)
      statuses.push(
        (await change(admin.token, { currentPassword: `wrong-${i}`, newPassword: NEW_PASSWORD }))
          .status,
      );
    expect(statuses).toEqual([400, 400, 400, 400, 400, 429]);
  });

  it('a machine identity has no password to change', async () => {
    const id = await addIdentity(tp, admin, 'member');
    const res = await api(tp, id.token).post('/api/v1/auth/password', {
      currentPassword: 'whatever-it-is',
      newPassword: NEW_PASSWORD,
    });
    expect(res.status).toBe(403);
  });
});
