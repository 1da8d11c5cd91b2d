/**
 * The data the API fuzz test runs against, so hostile requests reach deep code paths and not
 * only validation: an Enterprise organization with an admin, a viewer and a second admin to be
 * the target of changes; a custom role; an identity with an access token and Kubernetes auth;
 * a live gateway (a real agent over the tunnel) and an enrolled one never connected, both in a
 * pool; an access target on the pool; an enrollment token; pending invitations (into the
 * organization, and of the seeded people into the other one); and a second organization with objects of its own, whose IDs the
 * fuzzer sends as the first organization's.
 */
import { and, eq } from 'drizzle-orm';
import { orgMemberships, users } from '../../src/server/db/schema.js';
import { createGatewayKeyAndCsr } from '../../src/server/gateways/pki.js';
import { SUBJECT_ACTIONS } from '../../src/server/rbac/permissions.js';
import { AgentFleet } from '../helpers/gateway-agent.js';
import { freePort } from '../tunnel/harness.js';
import {
  addIdentity,
  addUser,
  api,
  bootstrap,
  createSecondOrg,
  issueTestLicense,
  TEST_PASSWORD,
  waitFor,
  type Account,
  type ApiResponse,
  type TestPlatform,
} from '../helpers/platform.js';
import type { IdPool } from './hostile.js';

export interface World {
  admin: Account;
  viewer: Account;
  other: Account;
  ids: IdPool;
  /** Path IDs that belong together, by the path's parameter names (`id,tokenId`). */
  related: Record<string, string[][]>;
  fleet: AgentFleet;
  /**
   * Puts back what fuzzed requests may have taken away: the seeded admin's and viewer's
   * memberships, roles and sessions, and the Enterprise license.
   */
  revive(): Promise<void>;
  /** Adds the id of an object the fuzzer created to the IDs of `kind`, for later operations. */
  harvest(kind: string, body: unknown): void;
}

function ok(res: ApiResponse, what: string, status = [200, 201]): ApiResponse {
  if (!status.includes(res.status)) throw new Error(`${what} answered ${res.status}: ${res.text}`);
  return res;
}

/**
 * An org's own objects: a license, a role, an identity with a token, a pool, a spare
 * enrollment token and an idle gateway (enrolled into the pool, never connected).
 */
async function furnish(tp: TestPlatform, owner: Account, tag: string) {
  const c = owner.client;
  const key = await issueTestLicense({ plan: 'enterprise', org: owner.orgId });
  ok(await c.put('/api/v1/license', { key }), 'PUT license');
  const role = `fuzz-${tag}`;
  ok(
    await c.post('/api/v1/roles', {
      slug: role,
      name: `Fuzz ${tag}`,
      permissions: [{ subject: 'Gateway', action: 'read' }],
    }),
    'POST role',
  );
  const identity = await addIdentity(tp, owner, 'viewer');
  const pool = ok(await c.post('/api/v1/gateway-pools', { name: `pool-${tag}` }), 'POST pool');
  const enrollment = ok(
    await c.post('/api/v1/gateways/enrollment-tokens', { poolIds: [pool.body.id] }),
    'POST enrollment token',
  );
  const spare = ok(await c.post('/api/v1/gateways/enrollment-tokens', {}), 'POST enrollment token');
  const { csrPem } = await createGatewayKeyAndCsr(`idle-${tag}`);
  const idle = ok(
    await api(tp).post('/api/v1/gateways/enroll', {
      token: enrollment.body.token,
      name: `idle-${tag}`,
      csr: csrPem,
    }),
    'POST enroll',
  );
  const gatewayId = (idle.body.gatewayId ?? idle.body.id ?? idle.body.gateway?.id) as string;
  if (!gatewayId) throw new Error(`enroll answer without a gateway id: ${idle.text}`);
  const target = ok(
    await c.post('/api/v1/access-targets', {
      name: `target-${tag}`,
      host: '127.0.0.1',
      port: 1,
      protocol: 'tcp',
      gatewayPoolId: pool.body.id,
    }),
    'POST access target',
  );
  const invitation = ok(
    await c.post('/api/v1/users', {
      email: `invitee-${tag}-${Date.now()}@example.com`,
      password: TEST_PASSWORD,
      role: 'viewer',
    }),
    'POST user (invitation)',
  );
  return {
    role,
    identity,
    targets: [target.body.id as string, target.body.name as string],
    invitationId: invitation.body.id as string,
    poolId: pool.body.id as string,
    enrollmentTokenId: spare.body.id as string,
    gatewayId,
    spareToken: spare.body.token as string,
  };
}

let signIns = 0;

/**
 * Signs a seeded account in again. The fuzzed login route may have spent this address's
 * login budget for the e-mail (a 429 is a fine answer to the fuzzer); each sign-in here
 * comes from an address of its own, as a proxy on loopback (trusted in tests) says.
 */
async function signIn(tp: TestPlatform, account: Account): Promise<string> {
  signIns++;
  const res = await api(tp).post(
    '/api/v1/auth/login',
    { email: account.email, password: account.password, organizationId: account.orgId },
    { headers: { 'x-forwarded-for': `198.18.${(signIns >> 8) & 255}.${signIns & 255}` } },
  );
  return (ok(res, `sign-in of ${account.email}`).body as { token: string }).token;
}

export async function seedWorld(tp: TestPlatform): Promise<World> {
  const admin = await bootstrap(tp);
  const viewer = await addUser(tp, admin, 'viewer');
  const target = await addUser(tp, admin, 'admin');
  const other = await createSecondOrg(tp);
  const mine = await furnish(tp, admin, 'a');
  const theirs = await furnish(tp, other, 'b');

  // A live gateway: a real agent process over the tunnel, allowed only a closed loopback
  // port so anything sent through it fails at once instead of waiting on a timeout.
  const closedPort = await freePort();
  const fleet = new AgentFleet();
  const liveToken = ok(
    await admin.client.post('/api/v1/gateways/enrollment-tokens', { poolIds: [mine.poolId] }),
    'POST enrollment token',
  );
  await fleet.start({
    platformUrl: tp.url,
    token: liveToken.body.token,
    name: 'live-a',
    allow: [`127.0.0.1:${closedPort}`],
  });
  const live = await waitFor(
    async () => {
      const res = await admin.client.get('/api/v1/gateways?limit=200');
      return (res.body?.items as { id: string; name: string; health: string }[] | undefined)?.find(
        (g) => g.name === 'live-a' && g.health === 'healthy',
      );
    },
    20_000,
    'the live gateway to connect',
  );
  ok(
    await admin.client.post(`/api/v1/identities/${mine.identity.id}/kubernetes-auth`, {
      kubernetesHost: `https://127.0.0.1:${closedPort}`,
      gatewayId: mine.gatewayId,
      allowedNamespaces: ['default'],
    }),
    'POST kubernetes-auth',
  );

  // Invitations into the other org for the seeded people, to accept or decline as themselves.
  const invited: string[] = [];
  const acceptCodes: string[] = [];
  for (const email of [admin.email, viewer.email]) {
    const res = ok(
      await other.client.post('/api/v1/users', { email, password: TEST_PASSWORD, role: 'viewer' }),
      'POST user (invitation of an existing account)',
    );
    invited.push(res.body.id as string);
    // An existing account accepts with the code shown once in the invitation's answer.
    if (typeof res.body.acceptCode === 'string') acceptCodes.push(res.body.acceptCode);
  }

  // License keys: this org's (valid, then expired), the other org's, and a free plan.
  const keys = [
    await issueTestLicense({ plan: 'enterprise', org: admin.orgId }),
    await issueTestLicense({ plan: 'enterprise', org: admin.orgId, days: -1 }),
    await issueTestLicense({ plan: 'enterprise', org: other.orgId }),
    await issueTestLicense({ plan: 'free', org: admin.orgId }),
  ];

  const ids: IdPool = {
    users: [admin.id, viewer.id, target.id, other.id],
    identities: [mine.identity.id, theirs.identity.id],
    tokens: [mine.identity.tokenId, theirs.identity.tokenId],
    'enrollment-tokens': [mine.enrollmentTokenId, theirs.enrollmentTokenId],
    gateways: [live.id, mine.gatewayId, theirs.gatewayId],
    'gateway-pools': [mine.poolId, theirs.poolId],
    roles: ['admin', 'viewer', mine.role, theirs.role, 'no-such-role'],
    organizations: [admin.orgId, other.orgId],
    'access-targets': [...mine.targets, ...theirs.targets],
    invitations: [mine.invitationId, theirs.invitationId, ...invited],
    // Words that make valid requests collide with what exists (409s) or sign in for real.
    email: [admin.email, viewer.email, other.email],
    password: [TEST_PASSWORD],
    key: keys,
    code: acceptCodes,
    name: ['pool-a', 'pool-b', 'target-a', 'target-b', 'live-a', 'idle-a', mine.identity.name],
    subject: Object.keys(SUBJECT_ACTIONS),
    action: [...new Set(Object.values(SUBJECT_ACTIONS).flat())],
    token: [mine.spareToken, theirs.spareToken, mine.identity.token],
  };

  // Fuzzed admins may demote or remove the seeded accounts (or end their sessions): revive()
  // puts them back as seeded, same IDs, so later operations still run with real credentials.
  const seeded = new Map<Account, { passwordHash: string; name: string; role: string }>();
  for (const account of [admin, viewer]) {
    const [row] = await tp.db.select().from(users).where(eq(users.id, account.id));
    if (!row) throw new Error(`seeded user ${account.email} not in the database`);
    seeded.set(account, { passwordHash: row.passwordHash, name: row.name, role: account.role });
  }

  return {
    admin,
    viewer,
    other,
    ids,
    fleet,
    related: {
      'id,tokenId': [
        [mine.identity.id, mine.identity.tokenId],
        [theirs.identity.id, theirs.identity.tokenId],
      ],
      'poolId,gatewayId': [
        [mine.poolId, live.id],
        [mine.poolId, mine.gatewayId],
        [theirs.poolId, theirs.gatewayId],
      ],
    },
    harvest(kind, body) {
      const id = (body as { id?: unknown } | undefined)?.id;
      const known = (ids[kind] ??= []);
      if (typeof id === 'string' && !known.includes(id) && known.length < 40) known.push(id);
    },
    async revive() {
      // The fuzzer may install a free or expired license: put Enterprise back, so the pool
      // routes keep running past the plan check.
      const license = await admin.client.get('/api/v1/license');
      if (license.status !== 200 || license.body?.plan !== 'enterprise')
        await admin.client.put('/api/v1/license', { key: keys[0] });
      for (const [account, row] of seeded) {
        const [member] = await tp.db
          .select({ role: orgMemberships.role })
          .from(orgMemberships)
          .where(
            and(eq(orgMemberships.orgId, account.orgId), eq(orgMemberships.userId, account.id)),
          );
        if (member?.role !== row.role) {
          await tp.db
            .insert(users)
            .values({
              id: account.id,
              email: account.email,
              name: row.name,
              passwordHash: row.passwordHash,
            })
            .onConflictDoUpdate({ target: users.id, set: { passwordHash: row.passwordHash } });
          await tp.db
            .insert(orgMemberships)
            .values({ orgId: account.orgId, userId: account.id, role: row.role })
            .onConflictDoUpdate({
              target: [orgMemberships.orgId, orgMemberships.userId],
              set: { role: row.role },
            });
        }
        const me = await account.client.get('/api/v1/me');
        if (me.status === 200 && member?.role === row.role) continue;
        const token = await signIn(tp, account);
        account.token = token;
        account.client = api(tp, token);
      }
    },
  };
}
