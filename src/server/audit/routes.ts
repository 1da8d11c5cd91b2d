import { z } from 'zod';
import { actorOf } from '../auth/actor.js';
import type { AppContext } from '../context.js';
import type { Api } from '../http/schemas.js';

export function auditRoutes(app: Api, ctx: AppContext): void {
  app.get(
    '/api/v1/audit-logs',
    {
      config: { permission: ['read', 'AuditLog'] },
      schema: {
        tags: ['audit'],
        summary: 'Audit log, newest first, filterable, cursor-paginated',
        querystring: z.strictObject({
          event: z
            .string()
            .max(100)
            .optional()
            .describe('exact event, or a prefix ending in * (e.g. gateway-pool.*)'),
          actorId: z.string().max(100).optional(),
          actorType: z.enum(['user', 'identity', 'gateway', 'system', 'anonymous']).optional(),
          from: z.iso
            .datetime({ offset: true, error: 'from must be an ISO 8601 date-time' })
            .optional(),
          to: z.iso
            .datetime({ offset: true, error: 'to must be an ISO 8601 date-time' })
            .optional(),
          limit: z.coerce.number().int().min(1).max(200).default(50),
          cursor: z
            .string()
            .regex(/^\d{1,18}$/, 'cursor must be the nextCursor of a previous page')
            .optional(),
        }),
      },
    },
    async (req) => {
      const q = req.query;
      const { items, nextCursor } = await ctx.audit.list(actorOf(req).orgId, {
        ...q,
        from: q.from ? new Date(q.from) : undefined,
        to: q.to ? new Date(q.to) : undefined,
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
