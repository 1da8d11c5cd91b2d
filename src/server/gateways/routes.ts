import { and, asc, eq } from 'drizzle-orm';
import { z } from 'zod';
import { actorOf, auditActor, auditContext } from '../auth/actor.js';
import type { AppContext } from '../context.js';
import { gateways } from '../db/schema.js';
import { conflict, isForeignKeyViolation, isUniqueViolation } from '../http/errors.js';
import { afterCursor, idParams, pageOf, pageQuery, type Api } from '../http/schemas.js';
import { findGateway, GATEWAY_NAME_MESSAGE, GATEWAY_NAME_PATTERN } from './queries.js';
import { consumersOfGateway } from './consumers.js';

const labelKey = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$/,
    'label keys are 1-63 characters: letters, digits, . _ / -',
  );
const labels = z
  .record(labelKey, z.string().max(256, 'label values are at most 256 characters'))
  .refine((l) => Object.keys(l).length <= 32, 'at most 32 labels');

export function gatewayRoutes(app: Api, ctx: AppContext): void {
  const tags = ['gateways'];
  const registry = () => ctx.directory;

  app.get(
    '/api/v1/gateways',
    {
      config: { permission: ['read', 'Gateway'] },
      schema: {
        tags,
        summary: 'Gateways of the organization with their live health',
        querystring: pageQuery,
      },
    },
    async (req) => {
      const { orgId } = actorOf(req);
      const rows = await ctx.db
        .select()
        .from(gateways)
        .where(
          and(
            eq(gateways.orgId, orgId),
            afterCursor(gateways.createdAt, gateways.id, req.query.cursor),
          ),
        )
        .orderBy(asc(gateways.createdAt), asc(gateways.id))
        .limit(req.query.limit + 1);
      const page = pageOf(rows, req.query.limit);
      return { items: page.items.map((row) => registry().view(row)), nextCursor: page.nextCursor };
    },
  );

  app.get(
    '/api/v1/gateways/:id',
    {
      config: { permission: ['read', 'Gateway'] },
      schema: { tags, summary: 'One gateway with its live health', params: idParams },
    },
    async (req) => registry().view(await findGateway(ctx.db, actorOf(req).orgId, req.params.id)),
  );

  app.patch(
    '/api/v1/gateways/:id',
    {
      config: { permission: ['edit', 'Gateway'] },
      schema: {
        tags,
        summary: 'Rename a gateway or set its labels (these override labels the agent reports)',
        params: idParams,
        body: z
          .strictObject({
            name: z.string().regex(GATEWAY_NAME_PATTERN, GATEWAY_NAME_MESSAGE).optional(),
            labels: labels.optional(),
          })
          .refine(
            (b) => b.name !== undefined || b.labels !== undefined,
            'give at least one of name, labels',
          ),
      },
    },
    async (req) => {
      const actor = actorOf(req);
      const before = await findGateway(ctx.db, actor.orgId, req.params.id);
      try {
        await ctx.db.transaction(async (tx) => {
          await tx
            .update(gateways)
            .set({ ...req.body, updatedAt: new Date() })
            .where(and(eq(gateways.orgId, actor.orgId), eq(gateways.id, before.id)));
          await ctx.audit.record(
            auditActor(actor),
            'gateway.update',
            { gatewayId: before.id, name: before.name, changes: req.body },
            auditContext(req, actor.orgId),
            tx,
          );
        });
      } catch (err) {
        if (isUniqueViolation(err))
          throw conflict(`A gateway named "${req.body.name}" already exists.`);
        throw err;
      }
      ctx.poolRuntime.invalidate();
      return registry().view(await findGateway(ctx.db, actor.orgId, before.id));
    },
  );

  app.delete(
    '/api/v1/gateways/:id',
    {
      config: { permission: ['delete', 'Gateway'] },
      schema: {
        tags,
        summary: 'Delete a gateway; its tunnel is dropped and its certificate refused',
        params: idParams,
      },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      const gw = await findGateway(ctx.db, actor.orgId, req.params.id);
      await ctx.db
        .transaction(async (tx) => {
          // Lock the row: a consumer attaching concurrently waits on it (its FK check takes a
          // share lock), so the consumer check below cannot be outrun.
          await tx
            .select({ id: gateways.id })
            .from(gateways)
            .where(and(eq(gateways.orgId, actor.orgId), eq(gateways.id, gw.id)))
            .for('update');
          const consumers = await consumersOfGateway(tx, actor.orgId, gw.id);
          if (consumers.length) {
            throw conflict(
              `Gateway "${gw.name}" is used by ${consumers.map((c) => `${c.kind} "${c.name}"`).join(', ')}; detach them first.`,
              { consumers },
            );
          }
          await tx
            .delete(gateways)
            .where(and(eq(gateways.orgId, actor.orgId), eq(gateways.id, gw.id)));
          await ctx.audit.record(
            auditActor(actor),
            'gateway.delete',
            { gatewayId: gw.id, name: gw.name },
            auditContext(req, actor.orgId),
            tx,
          );
        })
        .catch((err: unknown) => {
          // A reference that appeared anyway (another platform node) is refused by the FK.
          if (isForeignKeyViolation(err))
            throw conflict(`Gateway "${gw.name}" is in use; detach its consumers first.`);
          throw err;
        });
      registry().disconnect(gw.id, 'gateway deleted');
      ctx.poolRuntime.invalidate();
      return reply.code(204).send();
    },
  );

  app.post(
    '/api/v1/gateways/:id/health-check',
    {
      config: { permission: ['read', 'Gateway'] },
      schema: {
        tags,
        summary: 'Live round trip through the tunnel: the RTT, or why it failed',
        params: idParams,
      },
    },
    async (req) => {
      const gw = await findGateway(ctx.db, actorOf(req).orgId, req.params.id);
      const view = registry().view(gw);
      if (!registry().hub.live(gw.id)) {
        return {
          ok: false,
          health: view.health,
          error: `Gateway "${gw.name}" has no tunnel to the platform (${view.health}).`,
        };
      }
      try {
        const rttMs = await registry().hub.ping(gw.id);
        return { ok: true, health: view.health, rttMs: Math.round(rttMs * 1000) / 1000 };
      } catch (err) {
        return {
          ok: false,
          health: view.health,
          error: `Tunnel round trip failed: ${(err as Error).message}`,
        };
      }
    },
  );

  for (const draining of [true, false]) {
    app.post(
      `/api/v1/gateways/:id/${draining ? 'drain' : 'undrain'}`,
      {
        config: { permission: ['edit', 'Gateway'] },
        schema: {
          tags,
          summary: draining
            ? 'Drain: the gateway takes no new streams; open ones continue'
            : 'Undrain: the gateway takes new streams again',
          params: idParams,
        },
      },
      async (req) => {
        const actor = actorOf(req);
        const gw = await findGateway(ctx.db, actor.orgId, req.params.id);
        await ctx.db.transaction(async (tx) => {
          await tx
            .update(gateways)
            .set({ draining, updatedAt: new Date() })
            .where(and(eq(gateways.orgId, actor.orgId), eq(gateways.id, gw.id)));
          await ctx.audit.record(
            auditActor(actor),
            draining ? 'gateway.drain' : 'gateway.undrain',
            { gatewayId: gw.id, name: gw.name },
            auditContext(req, actor.orgId),
            tx,
          );
        });
        if (registry().hub.live(gw.id)) registry().hub.setDraining(gw.id, draining);
        return registry().view(await findGateway(ctx.db, actor.orgId, gw.id));
      },
    );
  }
}
