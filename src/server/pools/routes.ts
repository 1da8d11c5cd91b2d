import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { parseAuthority } from '../../protocol/tunnel.js';
import { actorOf, whoOf } from '../auth/actor.js';
import type { AppContext } from '../context.js';
import { GATEWAY_NAME_PATTERN } from '../gateways/queries.js';
import { seenConsumersSchema, gatewaySchema, poolRef } from '../gateways/schemas.js';
import { MEMBER_HEALTH_VALUES } from '../gateways/health.js';
import { noContent, pageQuery, pageSchema, type Api } from '../http/schemas.js';
import { PoolService } from './service.js';

const POOL_NAME_MESSAGE =
  'name must be 1-32 characters of lowercase letters, digits and hyphens (e.g. "dc1-pool")';
const poolName = z.string().regex(/^[a-z0-9-]{1,32}$/, POOL_NAME_MESSAGE);
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
const poolParamRef = poolRef('poolId');
const poolParams = z.object({ poolId: poolParamRef });
// A gateway's id or its name: anything else could name no gateway (UUIDs fit the name pattern).
const gatewayRef = z
  .string()
  .regex(
    GATEWAY_NAME_PATTERN,
    'gatewayId must be a gateway id (UUID) or a gateway name (e.g. "dc1-b")',
  )
  .describe("the gateway's id or its name");
const memberParams = z.object({ poolId: poolParamRef, gatewayId: gatewayRef });

const poolSchema = z.object({
  id: z.string(),
  name: z.string(),
  description: z.string(),
  minHealthy: z.number(),
  healthCheckTarget: z.string().nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
  memberCount: z.number(),
  healthyMemberCount: z.number(),
  health: z.enum(['healthy', 'degraded', 'down', 'empty']),
  connectedResourcesCount: z.number(),
});
const memberSchema = gatewaySchema
  .omit({ health: true, lastResort: true, connectedResourcesCount: true })
  .extend({
    health: z.enum(MEMBER_HEALTH_VALUES),
    healthReason: z.string().nullable(),
    lastResort: z.string().nullable(),
    healthCheck: z
      .object({
        target: z.string(),
        ok: z.boolean(),
        error: z.string().optional(),
        checkedAt: z.string(),
      })
      .nullable(),
    weight: z.number(),
    priority: z.number(),
    joinedAt: z.string(),
  });
const poolDetailSchema = poolSchema.extend({ members: z.array(memberSchema) });

export function poolRoutes(app: Api, ctx: AppContext): void {
  const tags = ['gateway pools'];
  const pools = new PoolService({
    db: ctx.db,
    audit: ctx.audit,
    directory: ctx.directory,
    runtime: ctx.poolRuntime,
    consumers: ctx.consumers,
  });
  // Making and changing pools is an Enterprise feature; the auth hook checks it after the
  // permission. Reading and deleting are not: after a downgrade, pools made before keep serving
  // their consumers, and an admin must still see them and be able to clean them up.
  const license = 'gatewayPool' as const;

  app.post(
    '/api/v1/gateway-pools',
    {
      config: { permission: ['create', 'GatewayPool'], license },
      schema: {
        tags,
        operationId: 'createGatewayPool',
        summary: 'Create a gateway pool',
        body: z.strictObject({
          name: poolName,
          description: description.optional(),
          minHealthy: minHealthy.optional(),
          healthCheckTarget: healthCheckTarget.nullable().optional(),
        }),
        response: { 201: poolDetailSchema },
      },
    },
    async (req, reply) =>
      reply
        .code(201)
        .send(await pools.create(actorOf(req).orgId, whoOf(req), req.body, randomUUID())),
  );

  app.get(
    '/api/v1/gateway-pools',
    {
      config: { permission: ['list', 'GatewayPool'] },
      schema: {
        tags,
        operationId: 'listGatewayPools',
        summary: 'Gateway pools with member counts and health, oldest first, a page at a time',
        querystring: pageQuery,
        response: { 200: pageSchema(poolSchema) },
      },
    },
    async (req) => pools.list(actorOf(req).orgId, req.query.cursor, req.query.limit),
  );

  app.get(
    '/api/v1/gateway-pools/:poolId',
    {
      config: { permission: ['list', 'GatewayPool'] },
      schema: {
        tags,
        operationId: 'getGatewayPool',
        summary: 'A pool (by id or name) with its members and their live health',
        params: poolParams,
        response: { 200: poolDetailSchema },
      },
    },
    async (req) => pools.get(actorOf(req).orgId, req.params.poolId),
  );

  app.patch(
    '/api/v1/gateway-pools/:poolId',
    {
      config: { permission: ['edit', 'GatewayPool'], license },
      schema: {
        tags,
        operationId: 'updateGatewayPool',
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
        // warnings: members that cannot reach a newly set health-check target (see the service).
        response: { 200: poolDetailSchema.extend({ warnings: z.array(z.string()) }) },
      },
    },
    async (req) => pools.update(actorOf(req).orgId, whoOf(req), req.params.poolId, req.body),
  );

  app.delete(
    '/api/v1/gateway-pools/:poolId',
    {
      config: { permission: ['delete', 'GatewayPool'] },
      schema: {
        tags,
        operationId: 'deleteGatewayPool',
        summary: 'Delete a pool no consumer references',
        params: poolParams,
        response: { 204: noContent },
      },
    },
    async (req, reply) => {
      await pools.remove(actorOf(req).orgId, whoOf(req), req.params.poolId);
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/api/v1/gateway-pools/:poolId/memberships',
    {
      config: { permission: ['edit', 'GatewayPool'], license },
      schema: {
        tags,
        operationId: 'addGatewayPoolMember',
        summary: 'Add a gateway (by id or name) to a pool',
        params: poolParams,
        body: z.strictObject({
          gatewayId: gatewayRef,
          weight: weight.optional(),
          priority: priority.optional(),
        }),
        response: { 201: poolDetailSchema },
      },
    },
    async (req, reply) =>
      reply
        .code(201)
        .send(await pools.addMember(actorOf(req).orgId, whoOf(req), req.params.poolId, req.body)),
  );

  app.patch(
    '/api/v1/gateway-pools/:poolId/memberships/:gatewayId',
    {
      config: { permission: ['edit', 'GatewayPool'], license },
      schema: {
        tags,
        operationId: 'updateGatewayPoolMember',
        summary: "Change a member's weight or priority tier (the gateway by id or name)",
        params: memberParams,
        body: z
          .strictObject({ weight: weight.optional(), priority: priority.optional() })
          .refine((b) => Object.keys(b).length > 0, 'give weight and/or priority'),
        response: { 200: poolDetailSchema },
      },
    },
    async (req) =>
      pools.updateMember(
        actorOf(req).orgId,
        whoOf(req),
        req.params.poolId,
        req.params.gatewayId,
        req.body,
      ),
  );

  app.delete(
    '/api/v1/gateway-pools/:poolId/memberships/:gatewayId',
    {
      // No plan check: after a downgrade, removing a dead member is cleanup, as deleting the
      // whole pool is (which a pool still used by consumers cannot be).
      config: { permission: ['edit', 'GatewayPool'] },
      schema: {
        tags,
        operationId: 'removeGatewayPoolMember',
        summary: 'Remove a gateway (by id or name) from a pool',
        params: memberParams,
        response: { 204: noContent },
      },
    },
    async (req, reply) => {
      await pools.removeMember(
        actorOf(req).orgId,
        whoOf(req),
        req.params.poolId,
        req.params.gatewayId,
      );
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/api/v1/gateway-pools/:poolId/resources',
    {
      config: { permission: ['list', 'GatewayPool'] },
      schema: {
        tags,
        operationId: 'listGatewayPoolResources',
        summary: 'Everything that uses the pool (kind, id, name)',
        params: poolParams,
        response: { 200: seenConsumersSchema },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      return pools.resources(actor.orgId, req.params.poolId, actor.ability);
    },
  );
}
