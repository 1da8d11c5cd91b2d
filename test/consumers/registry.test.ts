/**
 * The consumer registry and the shared attach rules on both drivers: one UNION ALL over every
 * registered kind, org-scoped, and the attach rules' refusals (permission, org, plan, policy).
 */
import { randomUUID } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { authorizeReference, type Attacher } from '../../src/server/consumers/attach.js';
import { ConsumerRegistry } from '../../src/server/consumers/registry.js';
import type { Db } from '../../src/server/db/client.js';
import {
  gatewayPoolMemberships,
  gatewayPools,
  gateways,
  identities,
  identityKubernetesAuths,
  organizations,
} from '../../src/server/db/schema.js';
import { ForbiddenError, NotFoundError, PolicyViolationError } from '../../src/server/errors.js';
import { kubernetesAuthConsumer } from '../../src/server/kubernetes-auth/consumer.js';
import { buildAbility, type AppAbility } from '../../src/server/rbac/ability.js';
import { DRIVERS, startTestPlatform, type TestPlatform } from '../helpers/platform.js';

/** A second kind, to prove the union: pool memberships "consume" their gateway and pool. */
const membershipKind = {
  kind: 'membership',
  table: gatewayPoolMemberships,
  orgId: gatewayPoolMemberships.orgId,
  gatewayId: gatewayPoolMemberships.gatewayId,
  gatewayPoolId: gatewayPoolMemberships.poolId,
  id: gatewayPoolMemberships.gatewayId,
  name: gateways.name,
  joins: [{ table: gateways, on: eq(gateways.id, gatewayPoolMemberships.gatewayId) }],
  visibleTo: (ability: AppAbility) => ability.can('read', 'Gateway'),
};

async function seedOrg(db: Db, name: string) {
  const orgId = randomUUID();
  await db.insert(organizations).values({ id: orgId, name });
  const gw = async (n: string) => {
    const id = randomUUID();
    await db.insert(gateways).values({
      id,
      orgId,
      name: n,
      certFingerprint: randomUUID(),
      certExpiresAt: new Date(Date.now() + 86400_000),
    });
    return id;
  };
  const pool = async (n: string) => {
    const id = randomUUID();
    await db.insert(gatewayPools).values({ id, orgId, name: n });
    return id;
  };
  const identity = async (n: string) => {
    const id = randomUUID();
    await db.insert(identities).values({ id, orgId, name: n, role: 'member' });
    return id;
  };
  const k8s = async (identityId: string, ref: { gatewayId?: string; gatewayPoolId?: string }) =>
    db.insert(identityKubernetesAuths).values({
      identityId,
      orgId,
      kubernetesHost: 'https://10.0.0.1:6443',
      ...ref,
    });
  const [g1, g2, p1, p2] = [await gw('gw-1'), await gw('gw-2'), await pool('p1'), await pool('p2')];
  const [beta, alpha, gamma] = [
    await identity('beta'),
    await identity('alpha'),
    await identity('gamma'),
  ];
  await k8s(beta, { gatewayPoolId: p1 });
  await k8s(alpha, { gatewayPoolId: p1 });
  await k8s(gamma, { gatewayId: g1 });
  await db.insert(gatewayPoolMemberships).values({ orgId, poolId: p1, gatewayId: g2 });
  return { orgId, g1, g2, p1, p2, alpha, beta, gamma };
}

describe.each(DRIVERS)('consumer registry and attach rules on %s', (driver) => {
  let tp: TestPlatform;
  let a: Awaited<ReturnType<typeof seedOrg>>;
  let b: Awaited<ReturnType<typeof seedOrg>>;
  const registry = new ConsumerRegistry([kubernetesAuthConsumer, membershipKind]);

  beforeAll(async () => {
    tp = await startTestPlatform(driver);
    a = await seedOrg(tp.db, 'A');
    b = await seedOrg(tp.db, 'B');
  });
  afterAll(() => tp?.close());

  it('lists every kind referencing a pool or a pinned gateway, ordered, org-scoped', async () => {
    expect(await registry.of(tp.db, a.orgId, { gatewayPoolId: a.p1 })).toEqual([
      { kind: 'kubernetes-auth', id: a.alpha, name: 'alpha' },
      { kind: 'kubernetes-auth', id: a.beta, name: 'beta' },
      { kind: 'membership', id: a.g2, name: 'gw-2' },
    ]);
    expect(await registry.of(tp.db, a.orgId, { gatewayId: a.g1 })).toEqual([
      { kind: 'kubernetes-auth', id: a.gamma, name: 'gamma' },
    ]);
    expect(await registry.of(tp.db, a.orgId, { gatewayPoolId: a.p2 })).toEqual([]);
    // Another org's ids are simply unknown.
    expect(await registry.of(tp.db, b.orgId, { gatewayPoolId: a.p1 })).toEqual([]);
  });

  it('names to a role only the kinds it may see, and counts the rest', async () => {
    const refs = await registry.of(tp.db, a.orgId, { gatewayPoolId: a.p1 });
    const gatewaysOnly = buildAbility([{ subject: 'Gateway', action: 'read' }]);
    expect(registry.visible(gatewaysOnly, refs)).toEqual({
      items: [{ kind: 'membership', id: a.g2, name: 'gw-2' }],
      hidden: 2,
    });
    const both = buildAbility([
      { subject: 'Gateway', action: 'read' },
      { subject: 'KubernetesAuth', action: 'read' },
    ]);
    expect(registry.visible(both, refs)).toEqual({ items: refs, hidden: 0 });
    // A kind nobody registered is never shown.
    expect(registry.visible(both, [{ kind: 'other', id: 'x', name: 'y' }])).toEqual({
      items: [],
      hidden: 1,
    });
  });

  it('counts per pool and per gateway in one query, numbers on both drivers', async () => {
    const pools = await registry.countsByPool(tp.db, a.orgId, [a.p1, a.p2, b.p1]);
    expect([...pools.entries()]).toEqual([[a.p1, 3]]);
    const gws = await registry.countsByGateway(tp.db, a.orgId, [a.g1, a.g2, a.g1]);
    expect(new Map(gws)).toEqual(
      new Map([
        [a.g1, 1],
        [a.g2, 1],
      ]),
    );
    expect((await registry.countsByPool(tp.db, a.orgId, [])).size).toBe(0);
    expect((await new ConsumerRegistry().countsByPool(tp.db, a.orgId, [a.p1])).size).toBe(0);
  });

  it('asks the database once per question, whatever the number of kinds and ids', async () => {
    const spy = vi.spyOn(tp.db, 'execute');
    try {
      await registry.of(tp.db, a.orgId, { gatewayPoolId: a.p1 });
      await registry.countsByPool(tp.db, a.orgId, [a.p1, a.p2, b.p1, b.p2]);
      await registry.countsByGateway(tp.db, a.orgId, [a.g1, a.g2, b.g1, b.g2]);
      expect(spy).toHaveBeenCalledTimes(3);
    } finally {
      spy.mockRestore();
    }
  });

  it('refuses a kind registered twice', () => {
    expect(() => new ConsumerRegistry([kubernetesAuthConsumer, kubernetesAuthConsumer])).toThrow(
      /registered twice/,
    );
  });

  describe('attach rules', () => {
    const actor = (orgId: string, perms: [string, string][]): Attacher => ({
      orgId,
      role: 'custom',
      ability: buildAbility(perms.map(([action, subject]) => ({ action, subject }) as never)),
    });
    const deps = (plan: boolean) => ({
      db: tp.db,
      licenses: {
        requireFeature: async () => {
          if (!plan) throw new Error('plan_upgrade_required');
        },
      },
    });
    const all: [string, string][] = [
      ['attach', 'Gateway'],
      ['attach', 'GatewayPool'],
    ];

    it('a new pool needs GatewayPool:attach, an existing pool of the org and the plan', async () => {
      const err = await authorizeReference(deps(true), actor(a.orgId, []), null, {
        gatewayPoolId: a.p1,
      }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ForbiddenError);
      expect((err as Error).message).toMatch(/GatewayPool:attach/);
      await expect(
        authorizeReference(deps(true), actor(a.orgId, all), null, { gatewayPoolId: b.p1 }),
      ).rejects.toBeInstanceOf(NotFoundError);
      await expect(
        authorizeReference(deps(false), actor(a.orgId, all), null, { gatewayPoolId: a.p1 }),
      ).rejects.toThrow(/plan_upgrade_required/);
      await authorizeReference(deps(true), actor(a.orgId, all), null, { gatewayPoolId: a.p1 });
      // Unchanged: nothing re-checked (a downgrade does not block other edits).
      await authorizeReference(
        deps(false),
        actor(a.orgId, []),
        { gatewayPoolId: a.p1 },
        { gatewayPoolId: a.p1 },
      );
    });

    it('a new gateway needs Gateway:attach and is refused under require_gateway_pools; an unchanged one is kept', async () => {
      await expect(
        authorizeReference(deps(true), actor(a.orgId, []), null, { gatewayId: a.g1 }),
      ).rejects.toThrow(/Gateway:attach/);
      await expect(
        authorizeReference(deps(true), actor(a.orgId, all), null, { gatewayId: b.g1 }),
      ).rejects.toBeInstanceOf(NotFoundError);
      await authorizeReference(deps(true), actor(a.orgId, all), null, { gatewayId: a.g1 });
      await tp.db
        .update(organizations)
        .set({ requireGatewayPools: true })
        .where(eq(organizations.id, a.orgId));
      try {
        await expect(
          authorizeReference(
            deps(true),
            actor(a.orgId, all),
            { gatewayPoolId: a.p1 },
            {
              gatewayId: a.g1,
            },
          ),
        ).rejects.toBeInstanceOf(PolicyViolationError);
        await authorizeReference(
          deps(true),
          actor(a.orgId, all),
          { gatewayId: a.g1 },
          { gatewayId: a.g1 },
        );
        await authorizeReference(deps(true), actor(a.orgId, all), { gatewayId: a.g1 }, null);
      } finally {
        await tp.db
          .update(organizations)
          .set({ requireGatewayPools: false })
          .where(eq(organizations.id, a.orgId));
      }
    });
  });
});
