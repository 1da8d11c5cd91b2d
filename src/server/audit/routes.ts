import { z } from 'zod';
import { actorOf } from '../auth/actor.js';
import type { AppContext } from '../context.js';
import { dateTimeParam, limitParam, type Api } from '../http/schemas.js';

export function auditRoutes(app: Api, ctx: AppContext): void {
  app.get(
    '/api/v1/audit-logs',
    {
      config: { permission: ['read', 'AuditLog'] },
      schema: {
        tags: ['audit'],
        operationId: 'listAuditLogs',
        summary: 'Audit log, newest first, filterable, cursor-paginated',
        querystring: z
          .strictObject({
            event: z
              .string()
              .max(100)
              .optional()
              .describe(
                'an event, where * stands for any characters (e.g. gateway-pool.*, *.delete)',
              ),
            actorId: z
              .uuid('actorId must be a UUID; to filter by e-mail or name use actor= instead')
              .optional()
              .describe('the acting user, identity or gateway by ID'),
            actor: z
              .string()
              .trim()
              .min(1)
              .max(320)
              .optional()
              .describe(
                "the actor's e-mail (users) or name (identities, gateways); exact, case-insensitive",
              ),
            actorType: z.enum(['user', 'identity', 'gateway', 'system', 'anonymous']).optional(),
            poolId: z
              .uuid('poolId must be a gateway pool id (UUID)')
              .optional()
              .describe(
                "a gateway pool's history: entries about it (metadata.poolId) and gateways deleted out of it",
              ),
            gatewayId: z
              .uuid('gatewayId must be a gateway id (UUID)')
              .optional()
              .describe(
                "a gateway's history: entries about it (metadata.gatewayId) and those it made itself",
              ),
            from: dateTimeParam('from').optional(),
            to: dateTimeParam('to').optional(),
            limit: limitParam,
            cursor: z
              .string()
              .regex(/^\d{1,18}$/, 'cursor must be the nextCursor of a previous page')
              .optional(),
          })
          // An empty page would look like "nothing happened" rather than a mistyped range.
          // Zod runs this even when a field failed its own check: only two real dates compare.
          .refine((q) => !(q.from instanceof Date && q.to instanceof Date) || q.from <= q.to, {
            message: 'from must not be later than to',
            path: ['from'],
          }),
        response: {
          200: z.object({
            items: z.array(
              z.object({
                id: z.string(),
                event: z.string(),
                actor: z.object({
                  type: z.string(),
                  id: z.string().nullable(),
                  name: z.string().nullable(),
                }),
                metadata: z.record(z.string(), z.unknown()),
                ip: z.string().nullable(),
                userAgent: z.string().nullable(),
                createdAt: z.string(),
              }),
            ),
            nextCursor: z.string().nullable(),
          }),
        },
      },
    },
    async (req) => {
      const q = req.query;
      const { items, nextCursor } = await ctx.audit.list(actorOf(req).orgId, {
        ...q,
        cursor: q.cursor ? Number(q.cursor) : undefined,
      });
      return {
        items: items.map((e) => ({
          id: String(e.id),
          event: e.event,
          actor: { type: e.actorType, id: e.actorId, name: e.actorName },
          metadata: e.metadata,
          ip: e.ip,
          userAgent: e.userAgent,
          createdAt: e.createdAt.toISOString(),
        })),
        nextCursor,
      };
    },
  );
}
