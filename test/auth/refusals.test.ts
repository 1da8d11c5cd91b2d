/**
 * A refused credential says why, to whoever still holds it: removed from the organization,
 * password changed elsewhere, signed out, expired, revoked. An unknown token stays "invalid".
 */
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { identityAccessTokens } from '../../src/server/db/schema.js';
import {
  addIdentity,
  addUser,
  api,
  bootstrap,
  DRIVERS,
  login,
  startTestPlatform,
  TEST_PASSWORD,
  type Account,
  type ApiResponse,
  type TestPlatform,
} from '../helpers/platform.js';

const brief = (res: ApiResponse) => `${res.status} ${res.text.slice(0, 300)}`;

describe.each(DRIVERS)('why a credential is refused (%s)', (driver) => {
  let tp: TestPlatform;
  let admin: Account;
  beforeAll(async () => {
    tp = await startTestPlatform(driver);
    admin = await bootstrap(tp, { organizationName: 'Refusals Inc' });
  });
  afterAll(() => tp?.close());

  const me = (token: string) => api(tp, token).get('/api/v1/me');
  const refusal = async (token: string, reason?: string) => {
    const res = await me(token);
    expect(res.status, brief(res)).toBe(401);
    if (reason) expect(res.body.error.details).toEqual({ reason });
    return String(res.body.error.message);
  };

  it('tells a removed member they were removed, naming the organization', async () => {
    const member = await addUser(tp, admin, 'member');
    const second = await login(tp, member.email, TEST_PASSWORD, admin.orgId);
    expect((await me(member.token)).status).toBe(200);
    const removed = await admin.client.delete(`/api/v1/users/${member.id}`);
    expect(removed.status, brief(removed)).toBe(204);
    for (const token of [member.token, second.token]) {
      const why = await refusal(token, 'removed');
      expect(why).toContain('You were removed from organization "Refusals Inc"');
      expect(why).toContain('invite you again');
    }
  });

  it('tells the other sessions of a person who changed the password why they ended', async () => {
    const user = await addUser(tp, admin, 'viewer');
    const other = await login(tp, user.email, TEST_PASSWORD, admin.orgId);
    const changed = await user.client.post('/api/v1/auth/password', {
      currentPassword: TEST_PASSWORD,
      newPassword: `${TEST_PASSWORD}-changed`,
    });
    expect(changed.status, brief(changed)).toBeLessThan(300);
    expect(await refusal(other.token, 'password')).toMatch(
      /password was changed in another session/,
    );
    expect((await me(user.token)).status).toBe(200); // the one that made the change stays
  });

  it('says a signed-out session was signed out', async () => {
    const { token } = await login(tp, admin.email, TEST_PASSWORD);
    const out = await api(tp, token).post('/api/v1/auth/logout');
    expect(out.status, brief(out)).toBeLessThan(300);
    expect(await refusal(token, 'signed_out')).toBe('This session was signed out: log in again.');
  });

  it('names the identity of a revoked or expired access token', async () => {
    const bot = await addIdentity(tp, admin, 'viewer');
    expect((await me(bot.token)).status).toBe(200);
    const revoked = await admin.client.delete(`/api/v1/identities/${bot.id}/tokens/${bot.tokenId}`);
    expect(revoked.status, brief(revoked)).toBe(204);
    expect(await refusal(bot.token, 'revoked')).toContain(
      `access token of identity "${bot.name}" was revoked`,
    );

    const old = await addIdentity(tp, admin, 'viewer');
    await tp.db
      .update(identityAccessTokens)
      .set({ expiresAt: new Date(Date.now() - 60_000) })
      .where(eq(identityAccessTokens.id, old.tokenId));
    tp.platform.ctx.credentials.clear();
    expect(await refusal(old.token, 'expired')).toMatch(
      new RegExp(`access token of identity "${old.name}" expired at \\d{4}-`),
    );
  });

  it('keeps an unknown token a plain "invalid", telling nothing more', async () => {
    for (const token of ['gps_' + 'x'.repeat(40), 'gpi_' + 'y'.repeat(40)]) {
      const res = await me(token);
      expect(res.status).toBe(401);
      expect(res.body.error.message).toBe(
        'Invalid or expired token: log in again or create a new access token.',
      );
      expect(res.body.error.details).toBeUndefined();
    }
  });
});
