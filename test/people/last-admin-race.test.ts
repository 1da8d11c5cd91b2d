/**
 * QA4 F-last-admin-race: two admins removing or demoting each other (or themselves) at the
 * same moment must never leave an organization without an admin. On PostgreSQL under READ
 * COMMITTED each request used to count the other as the admin that remains (write skew);
 * membership changes of an organization are now serialized. PGlite serializes anyway.
 */
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { orgMemberships } from '../../src/server/db/schema.js';
import {
  addUser,
  createSecondOrg,
  DRIVERS,
  startTestPlatform,
  type Account,
  type ApiResponse,
  type TestPlatform,
} from '../helpers/platform.js';

const ROUNDS = 10;

async function adminsOf(tp: TestPlatform, orgId: string): Promise<number> {
  const rows = await tp.db
    .select()
    .from(orgMemberships)
    .where(and(eq(orgMemberships.orgId, orgId), eq(orgMemberships.role, 'admin')));
  return rows.length;
}

const ok = (r: ApiResponse) => r.status >= 200 && r.status < 300;

describe.each(DRIVERS)('the last admin under concurrent changes on %s', (driver) => {
  let tp: TestPlatform;

  beforeAll(async () => {
    tp = await startTestPlatform(driver);
  });
  afterAll(() => tp?.close());

  async function twoAdmins(round: number): Promise<[Account, Account]> {
    const r1 = await createSecondOrg(tp, `Race ${driver} ${round} ${Date.now()}`);
    const r2 = await addUser(tp, r1, 'admin');
    return [r1, r2];
  }

  it(`two admins removing each other at once: exactly one succeeds, ${ROUNDS} rounds`, async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const [r1, r2] = await twoAdmins(round);
      const [a, b] = await Promise.all([
        r1.client.delete(`/api/v1/users/${r2.id}`),
        r2.client.delete(`/api/v1/users/${r1.id}`),
      ]);
      const answers = `round ${round}: ${a.status} ${a.text} / ${b.status} ${b.text}`;
      expect([a, b].filter(ok).length, answers).toBe(1);
      const refused = ok(a) ? b : a;
      // The loser hears "last admin", or, removed first, that its session ended.
      expect([401, 409], answers).toContain(refused.status);
      if (refused.status === 409) expect(refused.body.error.message).toMatch(/last admin/);
      expect(await adminsOf(tp, r1.orgId), answers).toBe(1);
    }
  }, 120_000);

  it(`two admins demoting themselves at once: exactly one succeeds, ${ROUNDS} rounds`, async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const [r1, r2] = await twoAdmins(round);
      const [a, b] = await Promise.all([
        r1.client.patch(`/api/v1/users/${r1.id}`, { role: 'viewer' }),
        r2.client.patch(`/api/v1/users/${r2.id}`, { role: 'viewer' }),
      ]);
      const answers = `round ${round}: ${a.status} ${a.text} / ${b.status} ${b.text}`;
      expect([a, b].filter(ok).length, answers).toBe(1);
      const refused = ok(a) ? b : a;
      expect(refused.status, answers).toBe(409);
      expect(refused.body.error.message).toMatch(/last admin/);
      expect(await adminsOf(tp, r1.orgId), answers).toBe(1);
    }
  }, 120_000);

  it(`two admins demoting each other at once: exactly one succeeds, ${ROUNDS} rounds`, async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const [r1, r2] = await twoAdmins(round);
      const [a, b] = await Promise.all([
        r1.client.patch(`/api/v1/users/${r2.id}`, { role: 'viewer' }),
        r2.client.patch(`/api/v1/users/${r1.id}`, { role: 'viewer' }),
      ]);
      const answers = `round ${round}: ${a.status} ${a.text} / ${b.status} ${b.text}`;
      expect([a, b].filter(ok).length, answers).toBe(1);
      expect(await adminsOf(tp, r1.orgId), answers).toBe(1);
    }
  }, 120_000);
});
