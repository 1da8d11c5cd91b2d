import { randomUUID } from 'node:crypto';
import { and, desc, eq, inArray, isNull } from 'drizzle-orm';
import { z } from 'zod';
import { actorOf, auditActor, auditContext } from '../auth/actor.js';
import { hashToken, newToken } from '../auth/tokens.js';
import type { AppContext } from '../context.js';
import { gatewayEnrollmentTokens, gatewayPools, gateways } from '../db/schema.js';
import { permissionDenied } from '../http/auth-hook.js';
import {
  AppError,
  badRequest,
  conflict,
  forbidden,
  isUniqueViolation,
  notFound,
  tooManyRequests,
} from '../http/errors.js';
import { addMember, poolsByIds } from '../pools/routes.js';
import { displayName, idParams, type Api } from '../http/schemas.js';
import { CsrError, signGatewayCsr } from './pki.js';
import { GATEWAY_NAME_MESSAGE, GATEWAY_NAME_PATTERN } from './queries.js';

const INVALID_TOKEN =
  'This enrollment token is unknown, expired, revoked or already used. Create a new one with POST /api/v1/gateways/enrollment-tokens.';

const tokenColumns = {
  id: gatewayEnrollmentTokens.id,
  name: gatewayEnrollmentTokens.name,
  poolIds: gatewayEnrollmentTokens.poolIds,
  expiresAt: gatewayEnrollmentTokens.expiresAt,
  usedAt: gatewayEnrollmentTokens.usedAt,
  usedByGatewayId: gatewayEnrollmentTokens.usedByGatewayId,
  revokedAt: gatewayEnrollmentTokens.revokedAt,
  createdAt: gatewayEnrollmentTokens.createdAt,
};
type TokenRow = {
  [K in keyof typeof tokenColumns]: (typeof gatewayEnrollmentTokens.$inferSelect)[K];
};

function tokenState(t: TokenRow, now = Date.now()): 'active' | 'used' | 'revoked' | 'expired' {
  if (t.revokedAt) return 'revoked';
  if (t.usedAt) return 'used';
  return t.expiresAt.getTime() <= now ? 'expired' : 'active';
}

const tokenView = (t: TokenRow) => ({
  id: t.id,
  name: t.name,
  poolIds: t.poolIds,
  state: tokenState(t),
  expiresAt: t.expiresAt.toISOString(),
  usedAt: t.usedAt?.toISOString() ?? null,
  usedByGatewayId: t.usedByGatewayId,
  revokedAt: t.revokedAt?.toISOString() ?? null,
  createdAt: t.createdAt.toISOString(),
});

export function enrollmentRoutes(app: Api, ctx: AppContext): void {
  const tags = ['gateways'];

  app.post(
    '/api/v1/gateways/enrollment-tokens',
    {
      config: { permission: ['create', 'EnrollmentToken'] },
      schema: {
        tags,
        summary: 'Create a single-use enrollment token for a new gateway (shown once)',
        body: z.strictObject({
          name: displayName('name').default('gateway enrollment'),
          ttlSeconds: z
            .number({ error: 'ttlSeconds must be a number' })
            .int('ttlSeconds must be a whole number')
            .min(60, 'ttlSeconds must be at least 60')
            .max(86_400, 'ttlSeconds must be at most 86400 (one day)')
            .default(3600),
          poolIds: z
            .array(z.uuid('poolIds must hold UUIDs'))
            .max(32, 'at most 32 pools')
            .default([]),
        }),
      },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      const { body } = req;
      const { token, hash } = newToken('enrollment');
      const id = randomUUID();
      const expiresAt = new Date(Date.now() + body.ttlSeconds * 1000);
      const poolIds = [...new Set(body.poolIds)];
      if (poolIds.length) {
        // Joining pools at enrollment changes pools: same license and permission as doing it by hand.
        await ctx.licenses.requireFeature(actor.orgId, 'gatewayPool');
        if (!actor.ability.can('edit', 'GatewayPool'))
          throw permissionDenied(actor, 'edit', 'GatewayPool');
        await poolsByIds(ctx.db, actor.orgId, poolIds);
      }
      await ctx.db.transaction(async (tx) => {
        await tx.insert(gatewayEnrollmentTokens).values({
          id,
          orgId: actor.orgId,
          name: body.name,
          tokenHash: hash,
          poolIds,
          expiresAt,
          createdByType: actor.type,
          createdById: actor.id,
        });
        await ctx.audit.record(
          auditActor(actor),
          'gateway.enrollment-token-create',
          { tokenId: id, name: body.name, expiresAt: expiresAt.toISOString(), poolIds },
          auditContext(req, actor.orgId),
          tx,
        );
      });
      return reply.code(201).send({
        id,
        name: body.name,
        token,
        expiresAt: expiresAt.toISOString(),
        poolIds,
        command: `gatepool gateway start --platform ${ctx.config.publicUrl ?? `${req.protocol}://${req.host}`} --token ${token} --name <gateway-name> --allow <host:port>`,
      });
    },
  );

  app.get(
    '/api/v1/gateways/enrollment-tokens',
    {
      config: { permission: ['read', 'EnrollmentToken'] },
      schema: {
        tags,
        summary: 'Enrollment tokens of the organization, newest first (never the secret)',
      },
    },
    async (req) => {
      const rows = await ctx.db
        .select(tokenColumns)
        .from(gatewayEnrollmentTokens)
        .where(eq(gatewayEnrollmentTokens.orgId, actorOf(req).orgId))
        .orderBy(desc(gatewayEnrollmentTokens.createdAt))
        .limit(500);
      return { items: rows.map(tokenView) };
    },
  );

  app.delete(
    '/api/v1/gateways/enrollment-tokens/:id',
    {
      config: { permission: ['delete', 'EnrollmentToken'] },
      schema: { tags, summary: 'Revoke an unused enrollment token', params: idParams },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      const [row] = await ctx.db
        .select(tokenColumns)
        .from(gatewayEnrollmentTokens)
        .where(
          and(
            eq(gatewayEnrollmentTokens.orgId, actor.orgId),
            eq(gatewayEnrollmentTokens.id, req.params.id),
          ),
        );
      if (!row) throw notFound('Enrollment token');
      if (row.usedAt)
        throw conflict('This enrollment token was already used; delete the gateway instead.');
      await ctx.db.transaction(async (tx) => {
        await tx
          .update(gatewayEnrollmentTokens)
          .set({ revokedAt: new Date() })
          .where(
            and(eq(gatewayEnrollmentTokens.id, row.id), isNull(gatewayEnrollmentTokens.revokedAt)),
          );
        await ctx.audit.record(
          auditActor(actor),
          'gateway.enrollment-token-revoke',
          { tokenId: row.id, name: row.name },
          auditContext(req, actor.orgId),
          tx,
        );
      });
      return reply.code(204).send();
    },
  );

  app.post(
    '/api/v1/gateways/enroll',
    {
      config: { auth: 'public' },
      schema: {
        tags,
        summary: 'Enroll a gateway: exchange a single-use token and a CSR for a client certificate',
        security: [],
        body: z.strictObject({
          token: z.string().min(1, 'token is required').max(256, 'token is too long'),
          name: z.string().regex(GATEWAY_NAME_PATTERN, GATEWAY_NAME_MESSAGE),
          csr: z.string().min(1, 'csr is required').max(16_384, 'csr is too long'),
          pools: z.array(z.string().max(64)).max(32).optional(),
        }),
      },
    },
    async (req, reply) => {
      const wait = ctx.limits.enrollPerIp.hit(`enroll:${req.ip}`);
      if (wait)
        throw tooManyRequests(`Too many enrollment attempts; try again in ${wait} s.`, wait);
      const { body } = req;
      const hash = hashToken(body.token);
      const [token] = await ctx.db
        .select({ ...tokenColumns, orgId: gatewayEnrollmentTokens.orgId })
        .from(gatewayEnrollmentTokens)
        .where(eq(gatewayEnrollmentTokens.tokenHash, hash));
      if (!token || tokenState(token) !== 'active')
        throw new AppError(401, 'invalid_enrollment_token', INVALID_TOKEN);
      const joinPools = await poolsToJoin(ctx, token.orgId, token.poolIds, body.pools);
      const gatewayId = randomUUID();
      const ca = await ctx.directory.cas.forOrg(token.orgId);
      let signed;
      try {
        signed = await signGatewayCsr({ ca, csrPem: body.csr, orgId: token.orgId, gatewayId });
      } catch (err) {
        if (err instanceof CsrError) throw badRequest(`csr: ${err.message}`);
        throw err;
      }
      try {
        await ctx.db.transaction(async (tx) => {
          // Single use even under concurrency: only one enrollment flips used_at.
          const claimed = await tx
            .update(gatewayEnrollmentTokens)
            .set({ usedAt: new Date(), usedByGatewayId: gatewayId })
            .where(
              and(
                eq(gatewayEnrollmentTokens.id, token.id),
                isNull(gatewayEnrollmentTokens.usedAt),
                isNull(gatewayEnrollmentTokens.revokedAt),
              ),
            )
            .returning({ id: gatewayEnrollmentTokens.id });
          if (claimed.length === 0)
            throw new AppError(401, 'invalid_enrollment_token', INVALID_TOKEN);
          await tx.insert(gateways).values({
            id: gatewayId,
            orgId: token.orgId,
            name: body.name,
            certFingerprint: signed.fingerprint256,
            certExpiresAt: signed.notAfter,
            enrolledWithTokenId: token.id,
          });
          const actor = { type: 'gateway' as const, id: gatewayId, name: body.name };
          await ctx.audit.record(
            actor,
            'gateway.enroll',
            {
              gatewayId,
              name: body.name,
              tokenId: token.id,
              tokenName: token.name,
              pools: joinPools.map((p) => p.name),
            },
            auditContext(req, token.orgId),
            tx,
          );
          for (const pool of joinPools) {
            await addMember(tx, token.orgId, pool, { id: gatewayId });
            await ctx.audit.record(
              actor,
              'gateway-pool.member-add',
              {
                poolId: pool.id,
                pool: pool.name,
                gatewayId,
                gateway: body.name,
                via: 'enrollment',
              },
              auditContext(req, token.orgId),
              tx,
            );
          }
        });
      } catch (err) {
        if (isUniqueViolation(err)) {
          throw conflict(
            `A gateway named "${body.name}" already exists in this organization; choose another --name or delete the old gateway.`,
          );
        }
        throw err;
      }
      // Pinned references and pool membership both read the cache: a new gateway must appear in it.
      ctx.poolRuntime.invalidate();
      const serverCa = await ctx.directory.cas.tunnelServerCa();
      return reply.code(201).send({
        gatewayId,
        orgId: token.orgId,
        certificate: signed.certPem,
        certificateChain: [signed.certPem, ca.certPem],
        caCertificate: ca.certPem,
        serverCaCertificate: serverCa.certPem,
        tunnelAddress: ctx.directory.tunnelAddress,
        certificateExpiresAt: signed.notAfter.toISOString(),
        pools: joinPools.map((p) => p.name),
      });
    },
  );
}

/**
 * Pools a newly enrolled gateway joins: the token's pools, or the subset named with `--pool`.
 * Naming a pool the token does not list is refused, so a token cannot be stretched.
 */
async function poolsToJoin(
  ctx: AppContext,
  orgId: string,
  tokenPoolIds: string[],
  requested: string[] | undefined,
) {
  // A pool deleted since the token was made is simply no longer joined.
  const allowed = tokenPoolIds.length
    ? await ctx.db
        .select()
        .from(gatewayPools)
        .where(and(eq(gatewayPools.orgId, orgId), inArray(gatewayPools.id, tokenPoolIds)))
    : [];
  let chosen = allowed;
  if (requested?.length) {
    const unknown = requested.filter((name) => !allowed.some((p) => p.name === name));
    if (unknown.length) {
      throw forbidden(
        `This enrollment token does not allow joining gateway pool(s) ${unknown.map((n) => `"${n}"`).join(', ')}` +
          (allowed.length
            ? `; it allows ${allowed.map((p) => `"${p.name}"`).join(', ')}.`
            : '; it names no pools.'),
        { pools: unknown },
      );
    }
    chosen = allowed.filter((p) => requested.includes(p.name));
  }
  if (chosen.length) await ctx.licenses.requireFeature(orgId, 'gatewayPool');
  return chosen;
}
