import { randomUUID } from 'node:crypto';
import { and, asc, desc, eq, isNull } from 'drizzle-orm';
import { z } from 'zod';
import { actorOf, auditActor, auditContext } from '../auth/actor.js';
import { newToken } from '../auth/tokens.js';
import type { AppContext } from '../context.js';
import { identities, identityAccessTokens } from '../db/schema.js';
import { conflict, isUniqueViolation, notFound } from '../http/errors.js';
import {
  afterCursor,
  displayName,
  idParams,
  pageOf,
  pageQuery,
  slug,
  type Api,
} from '../http/schemas.js';
import { assertCanGrantRole, assertCanManageHolder } from '../rbac/grant.js';

const MAX_TOKEN_TTL = 365 * 86400;
const identityView = {
  id: identities.id,
  name: identities.name,
  role: identities.role,
  createdAt: identities.createdAt,
  updatedAt: identities.updatedAt,
};
const tokenView = {
  id: identityAccessTokens.id,
  name: identityAccessTokens.name,
  createdAt: identityAccessTokens.createdAt,
  expiresAt: identityAccessTokens.expiresAt,
  revokedAt: identityAccessTokens.revokedAt,
  lastUsedAt: identityAccessTokens.lastUsedAt,
};

export function identityRoutes(app: Api, ctx: AppContext): void {
  const tags = ['identities'];

  app.post(
    '/api/v1/identities',
    {
      config: { permission: ['create', 'Identity'] },
      schema: {
        tags,
        summary: 'Create a machine identity',
        body: z.strictObject({ name: displayName('name'), role: slug('role', 64) }),
      },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      await assertCanGrantRole(ctx.db, actor, req.body.role);
      const id = randomUUID();
      try {
        await ctx.db.transaction(async (tx) => {
          await tx
            .insert(identities)
            .values({ id, orgId: actor.orgId, name: req.body.name, role: req.body.role });
          await ctx.audit.record(
            auditActor(actor),
            'identity.create',
            { identityId: id, name: req.body.name, role: req.body.role },
            auditContext(req, actor.orgId),
            tx,
          );
        });
      } catch (err) {
        if (isUniqueViolation(err))
          throw conflict(`An identity named "${req.body.name}" already exists.`);
        throw err;
      }
      return reply.code(201).send(await findIdentity(ctx, actor.orgId, id));
    },
  );

  app.get(
    '/api/v1/identities',
    {
      config: { permission: ['read', 'Identity'] },
      schema: { tags, summary: 'List machine identities', querystring: pageQuery },
    },
    async (req) => {
      const { orgId } = actorOf(req);
      const rows = await ctx.db
        .select(identityView)
        .from(identities)
        .where(
          and(
            eq(identities.orgId, orgId),
            afterCursor(identities.createdAt, identities.id, req.query.cursor),
          ),
        )
        .orderBy(asc(identities.createdAt), asc(identities.id))
        .limit(req.query.limit + 1);
      return pageOf(rows, req.query.limit);
    },
  );

  app.get(
    '/api/v1/identities/:id',
    {
      config: { permission: ['read', 'Identity'] },
      schema: { tags, summary: 'One machine identity', params: idParams },
    },
    async (req) => findIdentity(ctx, actorOf(req).orgId, req.params.id),
  );

  app.patch(
    '/api/v1/identities/:id',
    {
      config: { permission: ['edit', 'Identity'] },
      schema: {
        tags,
        summary: 'Rename an identity or change its role',
        params: idParams,
        body: z.strictObject({
          name: displayName('name').optional(),
          role: slug('role', 64).optional(),
        }),
      },
    },
    async (req) => {
      const actor = actorOf(req);
      const before = await findIdentity(ctx, actor.orgId, req.params.id);
      await assertCanManageHolder(ctx.db, actor, before, 'identity');
      if (req.body.role) await assertCanGrantRole(ctx.db, actor, req.body.role);
      try {
        await ctx.db.transaction(async (tx) => {
          await tx
            .update(identities)
            .set({ ...req.body, updatedAt: new Date() })
            .where(and(eq(identities.orgId, actor.orgId), eq(identities.id, before.id)));
          await ctx.audit.record(
            auditActor(actor),
            'identity.update',
            { identityId: before.id, name: before.name, changes: req.body },
            auditContext(req, actor.orgId),
            tx,
          );
        });
      } catch (err) {
        if (isUniqueViolation(err))
          throw conflict(`An identity named "${req.body.name}" already exists.`);
        throw err;
      }
      return findIdentity(ctx, actor.orgId, before.id);
    },
  );

  app.delete(
    '/api/v1/identities/:id',
    {
      config: { permission: ['delete', 'Identity'] },
      schema: { tags, summary: 'Delete an identity and its tokens', params: idParams },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      const before = await findIdentity(ctx, actor.orgId, req.params.id);
      await assertCanManageHolder(ctx.db, actor, before, 'identity');
      await ctx.db.transaction(async (tx) => {
        await tx
          .delete(identities)
          .where(and(eq(identities.orgId, actor.orgId), eq(identities.id, before.id)));
        await ctx.audit.record(
          auditActor(actor),
          'identity.delete',
          { identityId: before.id, name: before.name },
          auditContext(req, actor.orgId),
          tx,
        );
      });
      return reply.code(204).send();
    },
  );

  app.post(
    '/api/v1/identities/:id/tokens',
    {
      config: { permission: ['edit', 'Identity'] },
      schema: {
        tags,
        summary: 'Create an access token for an identity (shown once)',
        params: idParams,
        body: z.strictObject({
          name: z.string().trim().max(128, 'name must be at most 128 characters').default(''),
          ttlSeconds: z
            .number()
            .int('ttlSeconds must be a whole number')
            .min(60, 'ttlSeconds must be at least 60')
            .max(MAX_TOKEN_TTL, `ttlSeconds must be at most ${MAX_TOKEN_TTL} (one year)`)
            .default(30 * 86400),
        }),
      },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      const identity = await findIdentity(ctx, actor.orgId, req.params.id);
      await assertCanManageHolder(ctx.db, actor, identity, 'identity');
      const { token, hash } = newToken('identity');
      const id = randomUUID();
      const expiresAt = new Date(Date.now() + req.body.ttlSeconds * 1000);
      await ctx.db.transaction(async (tx) => {
        await tx.insert(identityAccessTokens).values({
          id,
          orgId: actor.orgId,
          identityId: identity.id,
          name: req.body.name,
          tokenHash: hash,
          expiresAt,
        });
        await ctx.audit.record(
          auditActor(actor),
          'identity.token-create',
          {
            identityId: identity.id,
            identityName: identity.name,
            tokenId: id,
            expiresAt: expiresAt.toISOString(),
          },
          auditContext(req, actor.orgId),
          tx,
        );
      });
      return reply.code(201).send({
        id,
        name: req.body.name,
        token,
        tokenType: 'Bearer',
        expiresAt: expiresAt.toISOString(),
      });
    },
  );

  app.get(
    '/api/v1/identities/:id/tokens',
    {
      config: { permission: ['read', 'Identity'] },
      schema: { tags, summary: "An identity's access tokens (never the secret)", params: idParams },
    },
    async (req) => {
      const { orgId } = actorOf(req);
      const identity = await findIdentity(ctx, orgId, req.params.id);
      const items = await ctx.db
        .select(tokenView)
        .from(identityAccessTokens)
        .where(
          and(
            eq(identityAccessTokens.orgId, orgId),
            eq(identityAccessTokens.identityId, identity.id),
          ),
        )
        .orderBy(desc(identityAccessTokens.createdAt))
        .limit(500);
      return { items };
    },
  );

  app.delete(
    '/api/v1/identities/:id/tokens/:tokenId',
    {
      config: { permission: ['edit', 'Identity'] },
      schema: {
        tags,
        summary: 'Revoke an access token',
        params: z.object({
          id: z.uuid('id must be a UUID'),
          tokenId: z.uuid('tokenId must be a UUID'),
        }),
      },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      const identity = await findIdentity(ctx, actor.orgId, req.params.id);
      await assertCanManageHolder(ctx.db, actor, identity, 'identity');
      const revoked = await ctx.db
        .update(identityAccessTokens)
        .set({ revokedAt: new Date() })
        .where(
          and(
            eq(identityAccessTokens.orgId, actor.orgId),
            eq(identityAccessTokens.identityId, identity.id),
            eq(identityAccessTokens.id, req.params.tokenId),
            isNull(identityAccessTokens.revokedAt),
          ),
        )
        .returning({ id: identityAccessTokens.id });
      if (revoked.length === 0) throw notFound('Active access token');
      await ctx.audit.record(
        auditActor(actor),
        'identity.token-revoke',
        { identityId: identity.id, identityName: identity.name, tokenId: req.params.tokenId },
        auditContext(req, actor.orgId),
      );
      return reply.code(204).send();
    },
  );
}

export async function findIdentity(ctx: AppContext, orgId: string, id: string) {
  const [row] = await ctx.db
    .select(identityView)
    .from(identities)
    .where(and(eq(identities.orgId, orgId), eq(identities.id, id)));
  if (!row) throw notFound('Identity');
  return row;
}
