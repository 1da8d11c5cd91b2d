import { z } from 'zod';
import {
  TUNNEL_LOOKUP_PATH,
  TunnelLookupRequestSchema,
  TunnelLookupResponseSchema,
} from '../../protocol/tunnel-lookup.js';
import { actorOf, whoOf } from '../auth/actor.js';
import type { AppContext } from '../context.js';
import {
  displayName,
  idParams,
  noContent,
  pageQuery,
  pageSchema,
  type Api,
} from '../http/schemas.js';
import { EnrollmentService } from './enrollment.js';
import { GATEWAY_NAME_MESSAGE, GATEWAY_NAME_PATTERN } from './queries.js';
import { poolRef } from './schemas.js';

const tokenSchema = z.object({
  id: z.string(),
  name: z.string(),
  poolIds: z.array(z.string()),
  /** Pools of poolIds deleted since: a gateway enrolling with this token will not join them. */
  missingPoolIds: z.array(z.string()),
  state: z.enum(['active', 'used', 'revoked', 'expired']),
  expiresAt: z.string(),
  usedAt: z.string().nullable(),
  usedByGatewayId: z.string().nullable(),
  revokedAt: z.string().nullable(),
  createdAt: z.string(),
});

export function enrollmentRoutes(app: Api, ctx: AppContext): void {
  const tags = ['gateways'];
  const enrollment = new EnrollmentService({
    db: ctx.db,
    audit: ctx.audit,
    cas: ctx.directory.cas,
    licenses: ctx.licenses,
    enrollLimit: (key) => ctx.limits.enrollPerIp.hit(key),
    tunnelAddress: () => ctx.directory.tunnelAddress,
    changed: () => ctx.poolRuntime.invalidate(),
    identify: (info) => ctx.directory.identify(info),
  });

  app.post(
    '/api/v1/gateways/enrollment-tokens',
    {
      config: { permission: ['create', 'EnrollmentToken'] },
      schema: {
        tags,
        operationId: 'createEnrollmentToken',
        summary: 'Create a single-use enrollment token for a new gateway (shown once)',
        description:
          '`poolIds` names pools the gateway joins when it enrolls, by id or by name ' +
          '(needs GatewayPool:edit and the gateway pools plan feature).',
        body: z.strictObject({
          name: displayName('name').default('gateway enrollment'),
          ttlSeconds: z
            .number({ error: 'ttlSeconds must be a number' })
            .int('ttlSeconds must be a whole number')
            .min(60, 'ttlSeconds must be at least 60')
            .max(86_400, 'ttlSeconds must be at most 86400 (one day)')
            .default(3600),
          poolIds: z.array(poolRef('poolIds')).max(32, 'at most 32 pools').default([]),
        }),
        response: {
          201: z.object({
            id: z.string(),
            name: z.string(),
            token: z.string(),
            expiresAt: z.string(),
            poolIds: z.array(z.string()),
            command: z.string(),
          }),
        },
      },
    },
    async (req, reply) => {
      const { body } = req;
      const platformUrl = ctx.config.publicUrl ?? `${req.protocol}://${req.host}`;
      const created = await enrollment.createToken(
        actorOf(req),
        whoOf(req),
        { name: body.name, ttlSeconds: body.ttlSeconds, pools: body.poolIds },
        platformUrl,
      );
      return reply.code(201).send(created);
    },
  );

  app.get(
    '/api/v1/gateways/enrollment-tokens',
    {
      config: { permission: ['read', 'EnrollmentToken'] },
      schema: {
        tags,
        operationId: 'listEnrollmentTokens',
        summary: 'Enrollment tokens of the organization, newest first (never the secret)',
        querystring: pageQuery,
        response: { 200: pageSchema(tokenSchema) },
      },
    },
    async (req) => enrollment.listTokens(actorOf(req).orgId, req.query.cursor, req.query.limit),
  );

  app.delete(
    '/api/v1/gateways/enrollment-tokens/:id',
    {
      config: { permission: ['delete', 'EnrollmentToken'] },
      schema: {
        tags,
        operationId: 'revokeEnrollmentToken',
        summary: 'Revoke an unused enrollment token',
        params: idParams,
        response: { 204: noContent },
      },
    },
    async (req, reply) => {
      await enrollment.revokeToken(actorOf(req).orgId, whoOf(req), req.params.id);
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/api/v1/gateways/enroll',
    {
      config: { auth: 'public' },
      schema: {
        tags,
        operationId: 'enrollGateway',
        summary: 'Enroll a gateway: exchange a single-use token and a CSR for a client certificate',
        security: [],
        body: z.strictObject({
          token: z.string().min(1, 'token is required').max(256, 'token is too long'),
          name: z.string().regex(GATEWAY_NAME_PATTERN, GATEWAY_NAME_MESSAGE),
          csr: z.string().min(1, 'csr is required').max(16_384, 'csr is too long'),
          pools: z.array(z.string().max(64)).max(32).optional(),
        }),
        response: {
          201: z.object({
            gatewayId: z.string(),
            orgId: z.string(),
            certificate: z.string(),
            certificateChain: z.array(z.string()),
            caCertificate: z.string(),
            serverCaCertificate: z.string(),
            tunnelAddress: z.string(),
            certificateExpiresAt: z.string(),
            pools: z.array(z.string()),
            warnings: z.array(z.string()),
          }),
        },
      },
    },
    async (req, reply) => {
      const enrolled = await enrollment.enroll(req.body, {
        ip: req.ip,
        userAgent: req.headers['user-agent'] ?? null,
      });
      return reply.code(201).send(enrolled);
    },
  );

  app.post(
    TUNNEL_LOOKUP_PATH,
    {
      // The gateway authenticates itself: certificate plus a signature by its key (no session).
      config: { auth: 'public' },
      schema: {
        tags,
        operationId: 'gatewayTunnelAddress',
        summary: "An enrolled gateway's current tunnel address (after the platform moved)",
        description:
          "Signed by the gateway: `signature` is its key's ECDSA/SHA-256 signature (base64 DER) of " +
          '"gatepool-tunnel-lookup\\n<orgId>\\n<gatewayId>\\n<timestamp>", ids as in its certificate. ' +
          '404 `gateway_unknown` when this platform has no such gateway.',
        security: [],
        body: TunnelLookupRequestSchema,
        response: { 200: TunnelLookupResponseSchema },
      },
    },
    async (req) => enrollment.tunnelFor(req.body),
  );
}
