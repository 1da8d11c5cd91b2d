/** The audit log: one entry per state change, who/where/what, filters, cursor pages, no secrets. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditLogs } from '../../src/server/db/schema.js';
import {
  addIdentity,
  api,
  bootstrap,
  createSecondOrg,
  DRIVERS,
  issueTestLicense,
  login,
  startTestPlatform,
  TEST_USER_AGENT,
  type Account,
  type Json,
  type TestPlatform,
} from '../helpers/platform.js';

interface Entry {
  id: string;
  event: string;
  actor: { type: string; id: string | null; name: string | null };
  metadata: Record<string, unknown>;
  ip: string | null;
  userAgent: string | null;
  createdAt: string;
}

async function allEntries(client: Account['client'], query = ''): Promise<Entry[]> {
  const out: Entry[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 100; page++) {
    const sep = query ? '&' : '';
    const res: Json = await client.get(
      `/api/v1/audit-logs?${query}${sep}limit=200${cursor ? `&cursor=${cursor}` : ''}`,
    );
    expect(res.status).toBe(200);
    out.push(...res.body.items);
    cursor = res.body.nextCursor;
    if (!cursor) return out;
  }
  throw new Error('too many audit pages');
}

describe.each(DRIVERS)('audit log on %s', (driver) => {
  let tp: TestPlatform;
  let admin: Account;
  const secrets: string[] = [];
  let memberId: string;
  let bot: Awaited<ReturnType<typeof addIdentity>>;
  let other: Account;

  beforeAll(async () => {
    tp = await startTestPlatform(driver);
    admin = await bootstrap(tp, { email: 'auditor@example.com' });
    secrets.push(admin.password, admin.token);
    const c = admin.client;

    // auth
    secrets.push((await login(tp, admin.email, admin.password)).token);
    const failed = await api(tp).post('/api/v1/auth/login', {
      email: admin.email,
      password: 'wrong-password-x',
    });
    expect(failed.status).toBe(401);
    secrets.push('wrong-password-x');
    const { token: toLogout } = await login(tp, admin.email, admin.password);
    expect((await api(tp, toLogout).post('/api/v1/auth/logout')).status).toBe(204);

    // members
    const memberPassword = 'member-secret-password';
    secrets.push(memberPassword);
    const m = await c.post('/api/v1/users', {
      email: 'm@example.com',
      password: memberPassword,
      role: 'viewer',
    });
    expect(m.status).toBe(201);
    // Signing in with the password the admin set accepts the invitation.
    memberId = (await login(tp, 'm@example.com', memberPassword, admin.orgId)).body.user.id;
    await c.patch(`/api/v1/users/${memberId}`, { role: 'member' });
    await c.delete(`/api/v1/users/${memberId}`);

    // identities and tokens (one made by an identity: actor type identity)
    bot = await addIdentity(tp, admin, 'admin');
    secrets.push(bot.token);
    const child = await bot.client.post('/api/v1/identities', {
      name: 'child-bot',
      role: 'viewer',
    });
    const tok = await c.post(`/api/v1/identities/${child.body.id}/tokens`, { name: 't' });
    secrets.push(tok.body.token);
    await c.delete(`/api/v1/identities/${child.body.id}/tokens/${tok.body.id}`);
    await c.patch(`/api/v1/identities/${child.body.id}`, { name: 'child-bot-2' });
    await c.delete(`/api/v1/identities/${child.body.id}`);

    // roles
    await c.post('/api/v1/roles', {
      slug: 'ops',
      name: 'Ops',
      permissions: [{ subject: 'Member', action: 'read' }],
    });
    await c.patch('/api/v1/roles/ops', { permissions: [{ subject: 'AuditLog', action: 'read' }] });
    await c.delete('/api/v1/roles/ops');

    // license and organization
    const license = await issueTestLicense({ plan: 'enterprise', org: admin.orgId, days: 10 });
    secrets.push(license);
    expect((await c.put('/api/v1/license', { key: license })).status).toBe(200);
    await c.patch('/api/v1/organization', { name: 'Acme Renamed' });
    await c.patch('/api/v1/organization', { requireGatewayPools: true });

    other = await createSecondOrg(tp, 'Elsewhere');
    await other.client.post('/api/v1/identities', { name: 'their-bot', role: 'viewer' });
  });
  afterAll(() => tp?.close());

  it('records every state change once, newest first, with actor, IP and user agent', async () => {
    const entries = await allEntries(admin.client);
    const ids = entries.map((e) => Number(e.id));
    expect([...ids].sort((a, b) => b - a)).toEqual(ids);

    const events = entries.map((e) => e.event).reverse();
    const expected = [
      'platform.bootstrap',
      'auth.login',
      'auth.login-failed',
      'auth.login',
      'auth.logout',
      'member.invite',
      'member.join',
      'auth.login',
      'member.update',
      'member.remove',
      'identity.create',
      'identity.token-create',
      'identity.create',
      'identity.token-create',
      'identity.token-revoke',
      'identity.update',
      'identity.delete',
      'role.create',
      'role.update',
      'role.delete',
      'license.update',
      'organization.update',
      'organization.policy-update',
    ];
    expect(events).toEqual(expected);

    const by = (event: string) => entries.filter((e) => e.event === event);
    for (const e of entries) {
      expect(e.ip).toBe('127.0.0.1');
      expect(e.userAgent).toBe(TEST_USER_AGENT);
    }
    expect(by('platform.bootstrap')[0]).toMatchObject({
      actor: { type: 'user', id: admin.id, name: admin.email },
      metadata: { organizationName: 'Acme', email: admin.email },
    });
    expect(by('auth.login-failed')[0]).toMatchObject({
      actor: { type: 'anonymous', id: null, name: admin.email },
      metadata: { email: admin.email, reason: 'bad_credentials' },
    });
    expect(by('member.update')[0]!.metadata).toMatchObject({
      userId: memberId,
      role: 'member',
      previousRole: 'viewer',
    });
    expect(by('member.remove')[0]!.metadata).toMatchObject({
      userId: memberId,
      email: 'm@example.com',
    });
    const madeByBot = by('identity.create').find((e) => e.metadata.name === 'child-bot');
    expect(madeByBot!.actor).toEqual({ type: 'identity', id: bot.id, name: bot.name });
    expect(by('role.update')[0]!.metadata).toEqual({
      slug: 'ops',
      permissions: ['AuditLog:read'],
      previousPermissions: ['Member:read'],
    });
    // The invitation's entry never says whether the e-mail had an account already.
    expect(Object.keys(by('member.invite')[0]!.metadata).sort()).toEqual([
      'email',
      'invitationId',
      'role',
    ]);
    expect(by('member.join')[0]).toMatchObject({
      actor: { type: 'user', id: memberId },
      metadata: { userId: memberId, email: 'm@example.com', role: 'viewer' },
    });
    expect(by('license.update')[0]!.metadata).toMatchObject({
      plan: 'enterprise',
      expiresAt: expect.any(String),
    });
    expect(by('organization.update')[0]!.metadata).toEqual({ from: 'Acme', to: 'Acme Renamed' });
    expect(by('organization.policy-update')[0]!.metadata).toEqual({
      policy: 'requireGatewayPools',
      from: false,
      to: true,
    });

    // The other org's log is its own.
    const theirs = await allEntries(other.client);
    // Its new admin's first sign-in replaced the password the operator gave (createSecondOrg).
    expect(theirs.map((e) => e.event).reverse()).toEqual([
      'organization.create',
      'auth.login',
      'user.password-changed',
      'identity.create',
    ]);
    expect(theirs[3]).toMatchObject({
      actor: { type: 'system' },
      metadata: { name: 'Elsewhere', adminEmail: other.email },
    });
  });

  it('never stores secrets in any entry', async () => {
    const rows = await tp.db.select().from(auditLogs);
    const dump = JSON.stringify(rows);
    for (const s of secrets) expect(dump).not.toContain(s);
    expect(dump).not.toMatch(/gps_|gpi_|scrypt\$/);
  });

  it('records the client address from X-Forwarded-For (behind a proxy)', async () => {
    await api(tp).post(
      '/api/v1/auth/login',
      { email: admin.email, password: 'nope-nope-nope' },
      { headers: { 'x-forwarded-for': '203.0.113.9', 'user-agent': 'curl/8.0' } },
    );
    const [latest] = (await admin.client.get('/api/v1/audit-logs?limit=1')).body.items;
    expect(latest).toMatchObject({
      event: 'auth.login-failed',
      ip: '203.0.113.9',
      userAgent: 'curl/8.0',
    });
  });

  it('filters by event, event prefix, actor and time range', async () => {
    const all = await allEntries(admin.client);
    const exact = await allEntries(admin.client, 'event=member.invite');
    expect(exact.map((e) => e.event)).toEqual(['member.invite']);
    const prefix = await allEntries(admin.client, 'event=identity.*');
    expect(prefix.map((e) => e.event)).toEqual(
      all.filter((e) => e.event.startsWith('identity.')).map((e) => e.event),
    );
    expect(prefix.length).toBe(7);
    // `*` anywhere, in any case: "what was created?"
    const created = await allEntries(admin.client, 'event=*.CREATE');
    expect(created.map((e) => e.event)).toEqual(
      all.filter((e) => e.event.endsWith('.create')).map((e) => e.event),
    );
    expect(created.length).toBeGreaterThan(1);
    expect(await allEntries(admin.client, 'event=IDENTITY.*')).toEqual(prefix);
    // `_` and `%` are literal, not LIKE wildcards.
    expect(await allEntries(admin.client, 'event=identity_*')).toEqual([]);
    expect(await allEntries(admin.client, 'event=%25')).toEqual([]);

    const byBot = await allEntries(admin.client, `actorId=${bot.id}`);
    expect(byBot.map((e) => e.event)).toEqual(['identity.create']);
    const identities = await allEntries(admin.client, 'actorType=identity');
    expect(identities).toEqual(byBot);
    // People type e-mails and names: `actor=` matches the recorded name, case-insensitively.
    expect(await allEntries(admin.client, `actor=${bot.name.toUpperCase()}`)).toEqual(byBot);
    const byEmail = await allEntries(admin.client, 'actor=AUDITOR%40Example.com');
    expect(byEmail.length).toBeGreaterThan(3);
    expect(byEmail).toEqual(all.filter((e) => e.actor.name === 'auditor@example.com'));
    expect(await allEntries(admin.client, 'actor=auditor')).toEqual([]);
    // Another org's people are not found through this org's log.
    const theirEmail = `actor=${encodeURIComponent(other.email)}`;
    expect((await allEntries(other.client, theirEmail)).length).toBeGreaterThan(0);
    expect(await allEntries(admin.client, theirEmail)).toEqual([]);
    const emailAsId = await admin.client.get('/api/v1/audit-logs?actorId=qa%40example.com');
    expect(emailAsId.status).toBe(400);
    expect(emailAsId.text).toMatch(/actorId must be a UUID.*use actor= instead/);
    expect(
      (await allEntries(admin.client, 'actorType=anonymous')).every(
        (e) => e.event === 'auth.login-failed',
      ),
    ).toBe(true);

    const chronological = [...all].reverse();
    const middle = chronological[Math.floor(chronological.length / 2)]!;
    const from = await allEntries(admin.client, `from=${encodeURIComponent(middle.createdAt)}`);
    expect(from.map((e) => e.id)).toEqual(
      all.filter((e) => e.createdAt >= middle.createdAt).map((e) => e.id),
    );
    const to = await allEntries(admin.client, `to=${encodeURIComponent(middle.createdAt)}`);
    expect(to.map((e) => e.id)).toEqual(
      all.filter((e) => e.createdAt <= middle.createdAt).map((e) => e.id),
    );
    const future = new Date(Date.now() + 3600_000).toISOString();
    expect(await allEntries(admin.client, `from=${future}`)).toEqual([]);
    // A range the wrong way round is a mistake to be told, not an empty page.
    const reversed = await admin.client.get(
      `/api/v1/audit-logs?from=${encodeURIComponent(future)}&to=${encodeURIComponent(middle.createdAt)}`,
    );
    expect(reversed.status).toBe(400);
    expect(reversed.body.error.message).toMatch(/from must not be later than to/);
    // One end not a date at all: its own 400, never the range check on a non-date (a 500).
    const broken = await admin.client.get(
      `/api/v1/audit-logs?from=nope&to=${encodeURIComponent(middle.createdAt)}`,
    );
    expect(broken.status).toBe(400);
    expect(broken.body.error.message).toMatch(/from must be an ISO 8601 date-time/);
    for (const bad of [
      'limit=1&limit=2',
      'limit=x',
      'limit=0',
      'limit=0x10',
      'limit=1e2',
      'limit=%20%205',
    ]) {
      const res = await admin.client.get(`/api/v1/audit-logs?${bad}`);
      expect(res.status, bad).toBe(400);
      expect(res.body.error.message, bad).toMatch(/limit must be one whole number from 1 to 200/);
    }
    const withOffset = await allEntries(
      admin.client,
      `to=${encodeURIComponent('2100-01-01T00:00:00+02:00')}`,
    );
    expect(withOffset.length).toBe(all.length);
    const combined = await allEntries(
      admin.client,
      `event=auth.*&actorType=user&from=${encodeURIComponent(all.at(-1)!.createdAt)}`,
    );
    // The member's first sign-in (it accepted the invitation) among the admin's own.
    expect(combined.map((e) => e.event)).toEqual([
      'auth.login',
      'auth.logout',
      'auth.login',
      'auth.login',
    ]);
  });

  it('pages by cursor without gaps or repeats', async () => {
    const all = await allEntries(admin.client);
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let i = 0; i < 50; i++) {
      const res: Json = await admin.client.get(
        `/api/v1/audit-logs?limit=3${cursor ? `&cursor=${cursor}` : ''}`,
      );
      expect(res.body.items.length).toBeLessThanOrEqual(3);
      seen.push(...res.body.items.map((e: Entry) => e.id));
      cursor = res.body.nextCursor;
      if (!cursor) break;
    }
    expect(cursor).toBeNull();
    expect(seen).toEqual(all.map((e) => e.id));
    // A cursor from another org's range reveals nothing of it.
    const theirs = await allEntries(other.client);
    const res = await admin.client.get(`/api/v1/audit-logs?cursor=${Number(theirs[0]!.id) + 1}`);
    expect(res.body.items.every((e: Entry) => all.some((a) => a.id === e.id))).toBe(true);
  });

  it('is readable by admins only among built-in roles', async () => {
    const viewerBot = await addIdentity(tp, admin, 'viewer');
    expect((await viewerBot.client.get('/api/v1/audit-logs')).status).toBe(403);
    const memberBot = await addIdentity(tp, admin, 'member');
    expect((await memberBot.client.get('/api/v1/audit-logs')).status).toBe(403);
  });
});
