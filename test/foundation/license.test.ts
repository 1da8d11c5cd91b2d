/** Licenses: plan and features per org, installing good and bad licenses, requireFeature. */
import { eq } from 'drizzle-orm';
import { exportPKCS8, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { organizations } from '../../src/server/db/schema.js';
import { AppError } from '../../src/server/http/errors.js';
import { issueLicense } from '../../src/server/license/license.js';
import {
  addUser,
  bootstrap,
  createSecondOrg,
  DRIVERS,
  issueTestLicense,
  startTestPlatform,
  type Account,
  type TestPlatform,
} from '../helpers/platform.js';

const UPGRADE =
  'Your current plan does not support gateway pools. Please upgrade to an Enterprise plan.';

/** Same signature, different payload: flips the plan inside a signed license. */
function tamper(license: string): string {
  const [header, payload, signature] = license.split('.');
  const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString());
  claims.plan = claims.plan === 'enterprise' ? 'free' : 'enterprise';
  claims.exp = null;
  return [header, Buffer.from(JSON.stringify(claims)).toString('base64url'), signature].join('.');
}

describe.each(DRIVERS)('license on %s', (driver) => {
  let tp: TestPlatform;
  let admin: Account;

  beforeAll(async () => {
    tp = await startTestPlatform(driver);
    admin = await bootstrap(tp);
  });
  afterAll(() => tp?.close());

  it('without a license: free plan, no gateway pools', async () => {
    const res = await admin.client.get('/api/v1/license');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      plan: 'free',
      features: { gatewayPool: false },
      expiresAt: null,
      installed: false,
      problem: null,
    });
    const err = await tp.platform.ctx.licenses
      .requireFeature(admin.orgId, 'gatewayPool')
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect(err).toMatchObject({ statusCode: 403, code: 'plan_upgrade_required', message: UPGRADE });
  });

  it.each([
    [
      'tampered',
      async (org: string) => tamper(await issueTestLicense({ plan: 'free', org })),
      'bad_signature',
    ],
    [
      'signed by another key',
      async (org: string) => {
        const { privateKey } = await generateKeyPair('EdDSA', {
          crv: 'Ed25519',
          extractable: true,
        });
        return issueLicense({
          privateKeyPem: await exportPKCS8(privateKey),
          plan: 'enterprise',
          org,
        });
      },
      'bad_signature',
    ],
    [
      'expired',
      (org: string) => issueTestLicense({ plan: 'enterprise', org, days: -1 }),
      'expired',
    ],
    [
      "another org's",
      () => issueTestLicense({ plan: 'enterprise', org: '7d4b8f0e-6a8e-4a57-9f57-2f1f5f4d9c11' }),
      'wrong_org',
    ],
    [
      'never-ending (1e9 days: no date holds its expiry)',
      (org: string) => issueTestLicense({ plan: 'enterprise', org, days: 1e9 }),
      'malformed',
    ],
    ['not a license', async () => 'hello.world.license', 'malformed'],
    ['not even a JWS', async () => 'garbage', 'malformed'],
  ])('refuses a %s license with 422 and keeps the plan', async (_label, make, reason) => {
    const res = await admin.client.put('/api/v1/license', { key: await make(admin.orgId) });
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe('unprocessable');
    expect(res.body.error.details).toEqual({ reason });
    expect(res.body.error.message.length).toBeGreaterThan(10);
    expect((await admin.client.get('/api/v1/license')).body.plan).toBe('free');
  });

  it('installs a valid enterprise license: plan, features, expiry; requireFeature passes', async () => {
    const key = await issueTestLicense({ plan: 'enterprise', org: admin.orgId, days: 30 });
    const res = await admin.client.put('/api/v1/license', { key });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      plan: 'enterprise',
      features: { gatewayPool: true },
      installed: true,
      problem: null,
    });
    const expires = Date.parse(res.body.expiresAt);
    expect(Math.abs(expires - (Date.now() + 30 * 86400_000))).toBeLessThan(60_000);
    const viewer = await addUser(tp, admin, 'viewer');
    expect((await viewer.client.get('/api/v1/license')).body).toMatchObject({
      plan: 'enterprise',
      features: { gatewayPool: true },
      expiresAt: res.body.expiresAt,
    });
    await expect(
      tp.platform.ctx.licenses.requireFeature(admin.orgId, 'gatewayPool'),
    ).resolves.toBeUndefined();
    // A tampered copy of the installed license is still refused.
    expect((await admin.client.put('/api/v1/license', { key: tamper(key) })).status).toBe(422);
    expect((await admin.client.get('/api/v1/license')).body.plan).toBe('enterprise');
  });

  it('accepts a license for any org (*) without expiry, per org', async () => {
    const other = await createSecondOrg(tp);
    expect((await other.client.get('/api/v1/license')).body.plan).toBe('free');
    const key = await issueTestLicense({ plan: 'enterprise', org: '*' });
    const res = await other.client.put('/api/v1/license', { key });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ plan: 'enterprise', expiresAt: null });
    // Installing in one org does not change another org's plan.
    const third = await createSecondOrg(tp);
    expect((await third.client.get('/api/v1/license')).body.plan).toBe('free');
    await expect(
      tp.platform.ctx.licenses.requireFeature(third.orgId, 'gatewayPool'),
    ).rejects.toMatchObject({
      code: 'plan_upgrade_required',
    });
  });

  it('falls back to free when an installed license has lapsed, saying why', async () => {
    const other = await createSecondOrg(tp);
    // Installed while valid, since expired (written directly: the API refuses expired ones).
    const lapsed = await issueTestLicense({ plan: 'enterprise', org: other.orgId, days: -1 });
    await tp.db
      .update(organizations)
      .set({ licenseKey: lapsed })
      .where(eq(organizations.id, other.orgId));
    tp.platform.ctx.licenses.invalidate(other.orgId);
    const res = await other.client.get('/api/v1/license');
    expect(res.body).toMatchObject({
      plan: 'free',
      features: { gatewayPool: false },
      installed: true,
    });
    // When it expired is kept: what the operator acts on.
    expect(res.body.expiresAt).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(Date.parse(res.body.expiresAt)).toBeLessThan(Date.now());
    expect(res.body.problem).toBe(`The license expired on ${res.body.expiresAt.slice(0, 10)}.`);
    await expect(
      tp.platform.ctx.licenses.requireFeature(other.orgId, 'gatewayPool'),
    ).rejects.toMatchObject({
      statusCode: 403,
      message: UPGRADE,
    });
  });
});

// Configuration, not storage: one driver is enough.
describe('license without a configured public key', () => {
  let tp: TestPlatform;
  beforeAll(
    async () =>
      void (tp = await startTestPlatform('pglite', {
        configOverrides: { GATEPOOL_LICENSE_PUBLIC_KEY: '' },
      })),
  );
  afterAll(() => tp?.close());

  it('stays on free and explains that no key is configured', async () => {
    const admin = await bootstrap(tp);
    const res = await admin.client.put('/api/v1/license', {
      key: await issueTestLicense({ plan: 'enterprise', org: admin.orgId }),
    });
    expect(res.status).toBe(422);
    expect(res.body.error.details).toEqual({ reason: 'no_public_key' });
    expect(res.body.error.message).toContain('GATEPOOL_LICENSE_PUBLIC_KEY');
  });
});
