import { eq } from 'drizzle-orm';
import { z } from 'zod';
import { actorOf, auditActor, auditContext } from '../auth/actor.js';
import type { AppContext } from '../context.js';
import { organizations } from '../db/schema.js';
import { notFound } from '../http/errors.js';
import { displayName, type Api } from '../http/schemas.js';

const orgView = (o: typeof organizations.$inferSelect) => ({
  id: o.id,
  name: o.name,
  requireGatewayPools: o.requireGatewayPools,
  createdAt: o.createdAt.toISOString(),
  updatedAt: o.updatedAt.toISOString(),
});

export function organizationRoutes(app: Api, ctx: AppContext): void {
  app.get(
    '/api/v1/organization',
    {
      config: { auth: 'authenticated' },
      schema: { tags: ['organization'], summary: "The caller's organization and its policies" },
    },
    async (req) => {
      const [org] = await ctx.db
        .select()
        .from(organizations)
        .where(eq(organizations.id, actorOf(req).orgId));
      if (!org) throw notFound('Organization not found.');
      return orgView(org);
    },
  );

  app.patch(
    '/api/v1/organization',
    {
      config: { permission: ['edit', 'Settings'] },
      schema: {
        tags: ['organization'],
        summary: 'Rename the organization or change its policies',
        body: z
          .strictObject({
            name: displayName('name').optional(),
            requireGatewayPools: z.boolean().optional(),
          })
          .refine((b) => b.name !== undefined || b.requireGatewayPools !== undefined, {
            message: 'give at least one of name, requireGatewayPools',
          }),
      },
    },
    async (req) => {
      const actor = actorOf(req);
      const { body } = req;
      return ctx.db.transaction(async (tx) => {
        const [before] = await tx
          .select()
          .from(organizations)
          .where(eq(organizations.id, actor.orgId))
          .for('update');
        if (!before) throw notFound('Organization not found.');
        const [after] = await tx
          .update(organizations)
          .set({ ...body, updatedAt: new Date() })
          .where(eq(organizations.id, actor.orgId))
          .returning();
        if (!after) throw notFound('Organization not found.');
        const context = auditContext(req, actor.orgId);
        if (body.name !== undefined && body.name !== before.name) {
          await ctx.audit.record(
            auditActor(actor),
            'organization.update',
            { from: before.name, to: after.name },
            context,
            tx,
          );
        }
        if (
          body.requireGatewayPools !== undefined &&
          body.requireGatewayPools !== before.requireGatewayPools
        ) {
          await ctx.audit.record(
            auditActor(actor),
            'organization.policy-update',
            {
              policy: 'requireGatewayPools',
              from: before.requireGatewayPools,
              to: after.requireGatewayPools,
            },
            context,
            tx,
          );
        }
        return orgView(after);
      });
    },
  );
}
