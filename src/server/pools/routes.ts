import { randomUUID } from 'node:crypto';
import { and, asc, eq, inArray } from 'drizzle-orm';
import { z } from 'zod';
import { parseAuthority } from '../../protocol/tunnel.js';
import { actorOf, auditActor, auditContext, type Actor } from '../auth/actor.js';
import type { AppContext } from '../context.js';
import type { Tx } from '../db/client.js';
import { gatewayPoolMemberships, gatewayPools, gateways } from '../db/schema.js';
import { findGateway } from '../gateways/queries.js';
import { conflict, isUniqueViolation, notFound } from '../http/errors.js';
import type { Api } from '../http/schemas.js';
import { consumersOfPool, consumerCounts, type PoolResources } from './consumers.js';
import { poolHealth } from './pool-health.js';
import { findPool } from './runtime.js';

export const POOL_NAME_MESSAGE =
  'name must be 1-32 characters of lowercase letters, digits and hyphens (e.g. "dc1-pool")';
export const poolName = z.string().regex(/^[a-z0-9-]{1,32}$/, POOL_NAME_MESSAGE);
const description = z.string().trim().max(1000, 'description must be at most 1000 characters');
const minHealthy = z
  .number()
  .int('minHealthy must be a whole number')
  .min(0, 'minHealthy must be >= 0')
  .max(1000, 'minHealthy must be <= 1000');
const healthCheckTarget = z
  .string()
  .max(300)
  .refine(
    (v) => parseAuthority(v) !== null,
    'healthCheckTarget must be host:port, e.g. "10.0.0.5:5432"',
  );
const weight = z
  .number()
  .int('weight must be a whole number')
  .min(1, 'weight must be between 1 and 10000')
  .max(10_000, 'weight must be between 1 and 10000');
const priority = z
  .number()
  .int('priority must be a whole number')
  .min(0, 'priority must be between 0 and 100')
  .max(100, 'priority must be between 0 and 100');
const poolParams = z.object({ poolId: z.uuid('poolId must be a UUID') });
const memberParams = z.object({
  poolId: z.uuid('poolId must be a UUID'),
  gatewayId: z.uuid('gatewayId must be a UUID'),
});

export function poolRoutes(app: Api, ctx: AppContext): void {
  const tags = ['gateway pools'];
  const pools = () => ctx.poolRuntime;
  /** Every pool endpoint is an Enterprise feature; the check follows the permission check. */
  const licensed = async (actor: Actor) => ctx.licenses.requireFeature(actor.orgId, 'gatewayPool');
  const changed = () => pools().invalidate();
  /** After a change: refresh the cache, then answer with the pool as it now stands. */
  const refreshed = async (orgId: string, poolId: string) => {
    changed();
    await pools().ensureLoaded();
    return poolDetail(orgId, poolId);
  };
  /** A membership request names this org's pool and this org's gateway, or it is a 404. */
  const poolAndGateway = async (orgId: string, poolId: string, gatewayId: string) => ({
    pool: await findPool(ctx.db, orgId, poolId),
    gw: await findGateway(ctx.db, orgId, gatewayId),
  });

  async function poolDetail(orgId: string, poolId: string) {
    const row = await findPool(ctx.db, orgId, poolId);
    const members = await ctx.db
      .select({
        gateway: gateways,
        weight: gatewayPoolMemberships.weight,
        priority: gatewayPoolMemberships.priority,
        joinedAt: gatewayPoolMemberships.createdAt,
      })
      .from(gatewayPoolMemberships)
      .innerJoin(gateways, eq(gateways.id, gatewayPoolMemberships.gatewayId))
      .where(
        and(eq(gatewayPoolMemberships.orgId, orgId), eq(gatewayPoolMemberships.poolId, row.id)),
      )
      .orderBy(asc(gatewayPoolMemberships.priority), asc(gateways.name));
    const now = Date.now();
    const memberViews = members.map((m) => {
      const view = ctx.directory.view(m.gateway, now);
      const state = pools().memberState(
        { orgId, healthCheckTarget: row.healthCheckTarget },
        { gatewayId: m.gateway.id, everConnected: m.gateway.status !== 'never-connected' },
        now,
      );
      return {
        ...view,
        health: state.health === 'degraded' ? 'degraded' : view.health,
        healthReason: state.reason,
        healthCheck: state.healthCheck,
        lastResort: state.lastResort,
        suspect: state.lastResort,
        weight: m.weight,
        priority: m.priority,
        joinedAt: m.joinedAt.toISOString(),
      };
    });
    const healthy = memberViews.filter((m) => m.health === 'healthy').length;
    const counts = await consumerCounts(ctx.db, orgId, [row.id]);
    return {
      ...poolView(row),
      memberCount: memberViews.length,
      healthyMemberCount: healthy,
      health: poolHealth(memberViews.length, healthy, row.minHealthy),
      connectedResourcesCount: counts.get(row.id) ?? 0,
      members: memberViews,
    };
  }

  app.post(
    '/api/v1/gateway-pools',
    {
      config: { permission: ['create', 'GatewayPool'] },
      schema: {
        tags,
        summary: 'Create a gateway pool',
        body: z.strictObject({
          name: poolName,
          description: description.optional(),
          minHealthy: minHealthy.optional(),
          healthCheckTarget: healthCheckTarget.nullable().optional(),
        }),
      },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      await licensed(actor);
      const id = randomUUID();
      const { body } = req;
      try {
        await ctx.db.transaction(async (tx) => {
          await tx.insert(gatewayPools).values({
            id,
            orgId: actor.orgId,
            name: body.name,
            description: body.description ?? '',
            minHealthy: body.minHealthy ?? 1,
            healthCheckTarget: body.healthCheckTarget ?? null,
          });
          await ctx.audit.record(
            auditActor(actor),
            'gateway-pool.create',
            { poolId: id, pool: body.name },
            auditContext(req, actor.orgId),
            tx,
          );
        });
      } catch (err) {
        if (isUniqueViolation(err))
          throw conflict(`A gateway pool named "${body.name}" already exists.`, {
            name: body.name,
          });
        throw err;
      }
      return reply.code(201).send(await refreshed(actor.orgId, id));
    },
  );

  app.get(
    '/api/v1/gateway-pools',
    {
      config: { permission: ['list', 'GatewayPool'] },
      schema: { tags, summary: 'Gateway pools with member counts and health' },
    },
    async (req) => {
      const actor = actorOf(req);
      await licensed(actor);
      await pools().ensureLoaded();
      // Three queries whatever the number of pools: pools, member counts from the cache, consumer counts.
      const rows = await ctx.db
        .select()
        .from(gatewayPools)
        .where(eq(gatewayPools.orgId, actor.orgId))
        .orderBy(asc(gatewayPools.name));
      const counts = await consumerCounts(
        ctx.db,
        actor.orgId,
        rows.map((r) => r.id),
      );
      const now = Date.now();
      return {
        items: rows.map((row) => {
          const cached = pools().pool(actor.orgId, row.id);
          const summary = cached
            ? pools().summary(cached, now)
            : { memberCount: 0, healthyMemberCount: 0, health: 'empty' as const };
          return { ...poolView(row), ...summary, connectedResourcesCount: counts.get(row.id) ?? 0 };
        }),
      };
    },
  );

  app.get(
    '/api/v1/gateway-pools/:poolId',
    {
      config: { permission: ['list', 'GatewayPool'] },
      schema: {
        tags,
        summary: 'A pool with its members and their live health',
        params: poolParams,
      },
    },
    async (req) => {
      const actor = actorOf(req);
      await licensed(actor);
      await pools().ensureLoaded();
      return poolDetail(actor.orgId, req.params.poolId);
    },
  );

  app.patch(
    '/api/v1/gateway-pools/:poolId',
    {
      config: { permission: ['edit', 'GatewayPool'] },
      schema: {
        tags,
        summary: 'Change a pool',
        params: poolParams,
        body: z
          .strictObject({
            name: poolName.optional(),
            description: description.optional(),
            minHealthy: minHealthy.optional(),
            healthCheckTarget: healthCheckTarget.nullable().optional(),
          })
          .refine((b) => Object.keys(b).length > 0, 'give at least one field to change'),
      },
    },
    async (req) => {
      const actor = actorOf(req);
      await licensed(actor);
      const before = await findPool(ctx.db, actor.orgId, req.params.poolId);
      try {
        await ctx.db.transaction(async (tx) => {
          await tx
            .update(gatewayPools)
            .set({ ...req.body, updatedAt: new Date() })
            .where(and(eq(gatewayPools.orgId, actor.orgId), eq(gatewayPools.id, before.id)));
          await ctx.audit.record(
            auditActor(actor),
            'gateway-pool.update',
            { poolId: before.id, pool: before.name, changes: req.body },
            auditContext(req, actor.orgId),
            tx,
          );
        });
      } catch (err) {
        if (isUniqueViolation(err))
          throw conflict(`A gateway pool named "${req.body.name}" already exists.`, {
            name: req.body.name,
          });
        throw err;
      }
      return refreshed(actor.orgId, before.id);
    },
  );

  app.delete(
    '/api/v1/gateway-pools/:poolId',
    {
      config: { permission: ['delete', 'GatewayPool'] },
      schema: { tags, summary: 'Delete a pool no consumer references', params: poolParams },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      await licensed(actor);
      await ctx.db.transaction(async (tx) => {
        // Lock the pool row: a consumer attaching concurrently waits on it (its FK check
        // needs a share lock), so the consumer check below cannot be outrun.
        const [pool] = await tx
          .select()
          .from(gatewayPools)
          .where(and(eq(gatewayPools.orgId, actor.orgId), eq(gatewayPools.id, req.params.poolId)))
          .for('update');
        if (!pool) throw notFound(`Gateway pool ${req.params.poolId}`);
        const consumers = await consumersOfPool(tx, actor.orgId, pool.id);
        const all = Object.values(consumers).flat();
        if (all.length) {
          throw conflict(
            `Gateway pool "${pool.name}" is used by ${all.map((c) => `${c.kind} "${c.name}"`).join(', ')}; detach them first.`,
            { consumers: all },
          );
        }
        await tx.delete(gatewayPools).where(eq(gatewayPools.id, pool.id));
        await ctx.audit.record(
          auditActor(actor),
          'gateway-pool.delete',
          { poolId: pool.id, pool: pool.name },
          auditContext(req, actor.orgId),
          tx,
        );
      });
      changed();
      return reply.code(204).send();
    },
  );

  app.post(
    '/api/v1/gateway-pools/:poolId/memberships',
    {
      config: { permission: ['edit', 'GatewayPool'] },
      schema: {
        tags,
        summary: 'Add a gateway to a pool',
        params: poolParams,
        body: z.strictObject({
          gatewayId: z.uuid('gatewayId must be a UUID'),
          weight: weight.optional(),
          priority: priority.optional(),
        }),
      },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      await licensed(actor);
      const { pool, gw } = await poolAndGateway(actor.orgId, req.params.poolId, req.body.gatewayId);
      try {
        await ctx.db.transaction(async (tx) => {
          await addMember(tx, actor.orgId, pool, gw, req.body);
          await ctx.audit.record(
            auditActor(actor),
            'gateway-pool.member-add',
            {
              poolId: pool.id,
              pool: pool.name,
              gatewayId: gw.id,
              gateway: gw.name,
              weight: req.body.weight ?? 100,
              priority: req.body.priority ?? 0,
            },
            auditContext(req, actor.orgId),
            tx,
          );
        });
      } catch (err) {
        if (isUniqueViolation(err))
          throw conflict(`Gateway "${gw.name}" is already a member of pool "${pool.name}".`);
        throw err;
      }
      return reply.code(201).send(await refreshed(actor.orgId, pool.id));
    },
  );

  app.patch(
    '/api/v1/gateway-pools/:poolId/memberships/:gatewayId',
    {
      config: { permission: ['edit', 'GatewayPool'] },
      schema: {
        tags,
        summary: "Change a member's weight or priority tier",
        params: memberParams,
        body: z
          .strictObject({ weight: weight.optional(), priority: priority.optional() })
          .refine((b) => Object.keys(b).length > 0, 'give weight and/or priority'),
      },
    },
    async (req) => {
      const actor = actorOf(req);
      await licensed(actor);
      const { pool, gw } = await poolAndGateway(
        actor.orgId,
        req.params.poolId,
        req.params.gatewayId,
      );
      await ctx.db.transaction(async (tx) => {
        const updated = await tx
          .update(gatewayPoolMemberships)
          .set(req.body)
          .where(
            and(
              eq(gatewayPoolMemberships.orgId, actor.orgId),
              eq(gatewayPoolMemberships.poolId, pool.id),
              eq(gatewayPoolMemberships.gatewayId, gw.id),
            ),
          )
          .returning({ poolId: gatewayPoolMemberships.poolId });
        if (!updated.length)
          throw notFound(`Gateway "${gw.name}" is not a member of pool "${pool.name}"; membership`);
        await ctx.audit.record(
          auditActor(actor),
          'gateway-pool.member-update',
          {
            poolId: pool.id,
            pool: pool.name,
            gatewayId: gw.id,
            gateway: gw.name,
            changes: req.body,
          },
          auditContext(req, actor.orgId),
          tx,
        );
      });
      return refreshed(actor.orgId, pool.id);
    },
  );

  app.delete(
    '/api/v1/gateway-pools/:poolId/memberships/:gatewayId',
    {
      config: { permission: ['edit', 'GatewayPool'] },
      schema: { tags, summary: 'Remove a gateway from a pool', params: memberParams },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      await licensed(actor);
      const { pool, gw } = await poolAndGateway(
        actor.orgId,
        req.params.poolId,
        req.params.gatewayId,
      );
      await ctx.db.transaction(async (tx) => {
        const removed = await tx
          .delete(gatewayPoolMemberships)
          .where(
            and(
              eq(gatewayPoolMemberships.orgId, actor.orgId),
              eq(gatewayPoolMemberships.poolId, pool.id),
              eq(gatewayPoolMemberships.gatewayId, gw.id),
            ),
          )
          .returning({ poolId: gatewayPoolMemberships.poolId });
        if (!removed.length)
          throw notFound(`Gateway "${gw.name}" is not a member of pool "${pool.name}"; membership`);
        await ctx.audit.record(
          auditActor(actor),
          'gateway-pool.member-remove',
          { poolId: pool.id, pool: pool.name, gatewayId: gw.id, gateway: gw.name },
          auditContext(req, actor.orgId),
          tx,
        );
      });
      changed();
      return reply.code(204).send();
    },
  );

  app.get(
    '/api/v1/gateway-pools/:poolId/resources',
    {
      config: { permission: ['list', 'GatewayPool'] },
      schema: { tags, summary: 'Everything that uses the pool, by kind', params: poolParams },
    },
    async (req): Promise<PoolResources> => {
      const actor = actorOf(req);
      await licensed(actor);
      const pool = await findPool(ctx.db, actor.orgId, req.params.poolId);
      return ctx.db.transaction((tx) => consumersOfPool(tx, actor.orgId, pool.id));
    },
  );
}

const poolView = (row: typeof gatewayPools.$inferSelect) => ({
  id: row.id,
  name: row.name,
  description: row.description,
  minHealthy: row.minHealthy,
  healthCheckTarget: row.healthCheckTarget,
  createdAt: row.createdAt.toISOString(),
  updatedAt: row.updatedAt.toISOString(),
});

/** Adds a membership; shared by the API and by enrollment into pools. */
export async function addMember(
  tx: Tx,
  orgId: string,
  pool: { id: string },
  gw: { id: string },
  opts: { weight?: number; priority?: number } = {},
): Promise<void> {
  await tx.insert(gatewayPoolMemberships).values({
    orgId,
    poolId: pool.id,
    gatewayId: gw.id,
    weight: opts.weight ?? 100,
    priority: opts.priority ?? 0,
  });
}

/** Pools of an org by id, for enrollment tokens (unknown ids answer 404). */
export async function poolsByIds(db: Tx | AppContext['db'], orgId: string, ids: string[]) {
  if (!ids.length) return [];
  const rows = await db
    .select()
    .from(gatewayPools)
    .where(and(eq(gatewayPools.orgId, orgId), inArray(gatewayPools.id, ids)));
  const missing = ids.filter((id) => !rows.some((r) => r.id === id));
  if (missing.length) throw notFound(`Gateway pool ${missing.join(', ')}`);
  return rows;
}
