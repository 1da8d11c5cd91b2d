import { z } from 'zod';
import { actorOf, whoOf } from '../auth/actor.js';
import type { AppContext } from '../context.js';
import { displayName, type Api } from '../http/schemas.js';
import type { OrganizationRow } from './queries.js';
import { changeOrganization, getOrganization } from './service.js';

const orgSchema = z.object({
  id: z.string(),
  name: z.string(),
  requireGatewayPools: z.boolean(),
  createdAt: z.string(),
  updatedAt: z.string(),
});
const orgView = (o: OrganizationRow) => ({
  id: o.id,
  name: o.name,
  requireGatewayPools: o.requireGatewayPools,
  createdAt: o.createdAt.toISOString(),
  updatedAt: o.updatedAt.toISOString(),
});

export function organizationRoutes(app: Api, ctx: AppContext): void {
  const tags = ['organization'];

  app.get(
    '/api/v1/organization',
    {
      config: { auth: 'authenticated' },
      schema: {
        tags,
        operationId: 'getOrganization',
        summary: "The caller's organization and its policies",
        response: { 200: orgSchema },
      },
    },
    async (req) => orgView(await getOrganization(ctx.db, actorOf(req).orgId)),
  );

  app.patch(
    '/api/v1/organization',
    {
      config: { permission: ['edit', 'Settings'] },
      schema: {
        tags,
        operationId: 'updateOrganization',
        summary: 'Rename the organization or change its policies',
        body: z
          .strictObject({
            name: displayName('name').optional(),
            requireGatewayPools: z.boolean().optional(),
          })
          .refine((b) => b.name !== undefined || b.requireGatewayPools !== undefined, {
            message: 'give at least one of name, requireGatewayPools',
          }),
        response: {
          200: orgSchema.extend({
            warnings: z
              .array(z.string())
              .describe(
                'What the change left as it was, e.g. consumers still pinned to a single gateway when requireGatewayPools is turned on',
              ),
          }),
        },
      },
    },
    async (req) => {
      const { org, warnings } = await changeOrganization(
        {
          db: ctx.db,
          audit: ctx.audit,
          pinned: (db, orgId) => ctx.consumers.pinned(db, orgId),
        },
        whoOf(req),
        actorOf(req).orgId,
        req.body,
      );
      return { ...orgView(org), warnings };
    },
  );
}
