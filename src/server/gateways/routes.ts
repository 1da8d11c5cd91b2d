import { z } from 'zod';
import { actorOf, whoOf } from '../auth/actor.js';
import type { AppContext } from '../context.js';
import { pageQuery, pageSchema, type Api } from '../http/schemas.js';
import { GATEWAY_NAME_MESSAGE, GATEWAY_NAME_PATTERN } from './queries.js';
import { seenConsumersSchema, gatewaySchema, health, labels } from './schemas.js';
import { GatewayService } from './service.js';

/**
 * A gateway by its id or its name, as pools and access targets take it (a UUID-shaped value
 * is an id). Anything else could name no gateway: refused before a query.
 */
const gatewayParams = z.object({
  id: z
    .string()
    .regex(GATEWAY_NAME_PATTERN, 'id must be a gateway id (UUID) or a gateway name (e.g. "dc1-b")')
    .describe("the gateway's id or its name"),
});

export function gatewayRoutes(app: Api, ctx: AppContext): void {
  const tags = ['gateways'];
  const gateways = new GatewayService({
    db: ctx.db,
    audit: ctx.audit,
    directory: ctx.directory,
    consumers: ctx.consumers,
    changed: () => ctx.poolRuntime.invalidate(),
  });

  app.get(
    '/api/v1/gateways',
    {
      config: { permission: ['read', 'Gateway'] },
      schema: {
        tags,
        operationId: 'listGateways',
        summary: 'Gateways of the organization with their live health',
        querystring: pageQuery,
        response: { 200: pageSchema(gatewaySchema) },
      },
    },
    async (req) => gateways.list(actorOf(req).orgId, req.query.cursor, req.query.limit),
  );

  app.get(
    '/api/v1/gateways/:id',
    {
      config: { permission: ['read', 'Gateway'] },
      schema: {
        tags,
        operationId: 'getGateway',
        summary: 'One gateway with its live health',
        params: gatewayParams,
        response: { 200: gatewaySchema },
      },
    },
    async (req) => gateways.get(actorOf(req).orgId, req.params.id),
  );

  app.get(
    '/api/v1/gateways/:id/resources',
    {
      config: { permission: ['read', 'Gateway'] },
      schema: {
        tags,
        operationId: 'listGatewayResources',
        summary: 'Everything that uses this gateway directly (pinned, not through a pool)',
        params: gatewayParams,
        response: { 200: seenConsumersSchema },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      return gateways.resources(actor.orgId, req.params.id, actor.ability);
    },
  );

  app.patch(
    '/api/v1/gateways/:id',
    {
      config: { permission: ['edit', 'Gateway'] },
      schema: {
        tags,
        operationId: 'updateGateway',
        summary: 'Rename a gateway or set its labels (these override labels the agent reports)',
        params: gatewayParams,
        body: z
          .strictObject({
            name: z.string().regex(GATEWAY_NAME_PATTERN, GATEWAY_NAME_MESSAGE).optional(),
            labels: labels.optional(),
          })
          .refine(
            (b) => b.name !== undefined || b.labels !== undefined,
            'give at least one of name, labels',
          ),
        response: { 200: gatewaySchema },
      },
    },
    async (req) => gateways.update(actorOf(req).orgId, whoOf(req), req.params.id, req.body),
  );

  app.delete(
    '/api/v1/gateways/:id',
    {
      config: { permission: ['delete', 'Gateway'] },
      schema: {
        tags,
        operationId: 'deleteGateway',
        summary: 'Delete a gateway; its tunnel is dropped and its certificate refused',
        description:
          'Refused (409, naming them) while consumers pin the gateway. The answer names the pools it left ' +
          'and warns when it was the last healthy member of a pool that serves consumers.',
        params: gatewayParams,
        response: {
          200: z.object({
            deleted: z.literal(true),
            leftPools: z.array(z.object({ id: z.string(), name: z.string() })),
            warnings: z.array(z.string()),
          }),
        },
      },
    },
    async (req) => gateways.remove(actorOf(req).orgId, whoOf(req), req.params.id),
  );

  app.post(
    '/api/v1/gateways/:id/health-check',
    {
      config: { permission: ['read', 'Gateway'] },
      schema: {
        tags,
        operationId: 'checkGatewayHealth',
        summary: 'Live round trip through the tunnel: the RTT, or why it failed',
        params: gatewayParams,
        response: {
          200: z.object({
            ok: z.boolean(),
            health,
            rttMs: z.number().optional(),
            error: z.string().optional(),
          }),
        },
      },
    },
    async (req) => gateways.healthCheck(actorOf(req).orgId, req.params.id),
  );

  for (const draining of [true, false]) {
    app.post(
      `/api/v1/gateways/:id/${draining ? 'drain' : 'undrain'}`,
      {
        config: { permission: ['edit', 'Gateway'] },
        schema: {
          tags,
          operationId: draining ? 'drainGateway' : 'undrainGateway',
          summary: draining
            ? 'Drain: the gateway takes no new streams; open ones continue'
            : 'Undrain: the gateway takes new streams again',
          params: gatewayParams,
          response: { 200: gatewaySchema },
        },
      },
      async (req) => gateways.setDraining(actorOf(req).orgId, whoOf(req), req.params.id, draining),
    );
  }
}
