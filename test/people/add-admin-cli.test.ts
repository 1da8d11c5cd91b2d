/**
 * `gatepool admin add-admin` (QA4 F-last-admin-race): the operator's way back into an
 * organization left without an admin. Through a running platform's data directory socket
 * (embedded database) and directly on PostgreSQL.
 */
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { orgMemberships } from '../../src/server/db/schema.js';
import { gatepool } from '../access/scenario.js';
import {
  addUser,
  api,
  bootstrap,
  DRIVERS,
  firstSignIn,
  login,
  startTestPlatform,
  TEST_PASSWORD,
  type TestPlatform,
} from '../helpers/platform.js';

describe.each(DRIVERS)('gatepool admin add-admin on %s', (driver) => {
  let tp: TestPlatform;

  beforeAll(async () => {
    // Embedded: the platform opens its own data directory and answers on its socket.
    tp = await startTestPlatform(driver, driver === 'pglite' ? { database: 'configured' } : {});
  });
  afterAll(() => tp?.close());

  const where = () =>
    driver === 'pglite' ? ['--data-dir', tp.dataDir] : ['--database-url', tp.databaseUrl!];

  it('promotes a member of an organization with no admin left, adds a new person, refuses the unknown', async () => {
    const admin = await bootstrap(tp, { organizationName: `Orphan ${driver}` });
    const viewer = await addUser(tp, admin, 'viewer');
    // What the race used to leave: no admin at all (by hand here).
    await tp.db
      .update(orgMemberships)
      .set({ role: 'viewer' })
      .where(and(eq(orgMemberships.orgId, admin.orgId), eq(orgMemberships.userId, admin.id)));
    tp.platform.ctx.credentials.clear();

    const promoted = await gatepool(
      ['admin', 'add-admin', ...where(), '--org', `orphan ${driver}`, '--email', viewer.email],
      { GATEPOOL_ADMIN_PASSWORD: '' },
    );
    expect(promoted.code, promoted.stderr).toBe(0);
    expect(promoted.stdout).toBe(
      `${viewer.email} (was viewer) is now an admin of Orphan ${driver} (${admin.orgId}).\n`,
    );
    const again = await login(tp, viewer.email, TEST_PASSWORD);
    expect(again.body.role).toBe('admin');
    const log = await api(tp, again.token).get('/api/v1/audit-logs?event=organization.admin-add');
    expect(log.body.items[0]).toMatchObject({
      actor: { type: 'system', name: 'gatepool admin' },
      metadata: { email: viewer.email, previousRole: 'viewer', createdUser: false },
    });

    const same = await gatepool(
      ['admin', 'add-admin', ...where(), '--org', admin.orgId, '--email', viewer.email],
      {},
    );
    expect(same.code, same.stderr).toBe(0);
    expect(same.stdout).toContain('is already an admin of');

    // A new e-mail needs the operator's password, and must change it at first sign-in.
    const email = `rescuer-${driver}@example.com`;
    const noPassword = await gatepool(
      ['admin', 'add-admin', ...where(), '--org', `Orphan ${driver}`, '--email', email],
      { GATEPOOL_ADMIN_PASSWORD: '' },
    );
    expect(noPassword.code).toBe(1);
    expect(noPassword.stderr).toMatch(/set GATEPOOL_ADMIN_PASSWORD to a password of at least 12/);
    const added = await gatepool(
      ['admin', 'add-admin', ...where(), '--org', `Orphan ${driver}`, '--email', email],
      { GATEPOOL_ADMIN_PASSWORD: 'operator-chosen-pw' },
    );
    expect(added.code, added.stderr).toBe(0);
    expect(added.stdout).toContain('must be changed at first sign-in');
    const rescuer = await firstSignIn(tp, email, 'operator-chosen-pw', admin.orgId);
    expect(rescuer.body.role).toBe('admin');

    const unknown = await gatepool(
      ['admin', 'add-admin', ...where(), '--org', 'No Such Org', '--email', email],
      {},
    );
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('there is no organization "No Such Org"');
  }, 120_000);
});
