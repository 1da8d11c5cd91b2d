import { z } from 'zod';
import { actorOf, whoOf } from '../auth/actor.js';
import type { AppContext } from '../context.js';
import { idParams, noContent, pageQuery, pageSchema, slug, type Api } from '../http/schemas.js';
import type { IdentityRow, TokenRow } from './queries.js';
import { IdentityService } from './service.js';

const MAX_TOKEN_TTL = 365 * 86400;

/**
 * An identity's name is what the audit log shows as its actor, next to people's e-mails: it
 * must not pass for a person (no "@", nor its full-width look-alikes) nor hide or reorder text
 * (control, invisible and bidirectional-override characters, spaces at either end). Checked on
 * create and rename only, so identities named before this rule keep working.
 */
const identityName = z
  .string()
  .max(128, 'name must be at most 128 characters')
  .refine((s) => s.trim() !== '', 'name must not be empty')
  .refine((s) => s.trim() === '' || s.trim() === s, 'name must not start or end with spaces')
  .refine(
    (s) => !/[@\uFF20\uFE6B]/.test(s),
    'name must not contain "@": identity names must not look like an e-mail (the audit log shows them next to people\'s)',
  )
  .refine(
    (s) => !/\p{Cc}/u.test(s),
    'name must not contain control characters (NUL, tab, newline, …)',
  )
  .refine(
    (s) => !/[\p{Cf}\p{Zl}\p{Zp}]/u.test(s),
    'name must not contain invisible, text-direction or line-break characters',
  )
  // PostgreSQL cannot store a lone UTF-16 surrogate inside JSON (audit metadata).
  .refine(
    (s) => !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s),
    'name must not contain invalid Unicode',
  );

const identitySchema = z.object({
  id: z.string(),
  name: z.string(),
  role: z.string(),
  createdAt: z.string(),
  updatedAt: z.string(),
  createdBy: z
    .object({ type: z.string(), id: z.string().nullable(), name: z.string().nullable() })
    .nullable()
    .describe(
      'Who created the identity (a user by id and e-mail, or an identity); null if unknown',
    ),
});
const identityView = (i: IdentityRow) => ({
  id: i.id,
  name: i.name,
  role: i.role,
  createdAt: i.createdAt.toISOString(),
  updatedAt: i.updatedAt.toISOString(),
  createdBy: i.createdByType
    ? { type: i.createdByType, id: i.createdById, name: i.createdByName }
    : null,
});
const tokenSchema = z.object({
  id: z.string(),
  name: z.string(),
  createdAt: z.string(),
  expiresAt: z.string().nullable(),
  revokedAt: z.string().nullable(),
  lastUsedAt: z.string().nullable(),
});
const iso = (d: Date | null) => d?.toISOString() ?? null;
const tokenView = (t: TokenRow) => ({
  ...t,
  createdAt: t.createdAt.toISOString(),
  expiresAt: iso(t.expiresAt),
  revokedAt: iso(t.revokedAt),
  lastUsedAt: iso(t.lastUsedAt),
});

export function identityRoutes(app: Api, ctx: AppContext): void {
  const tags = ['identities'];
  const identities = new IdentityService({ db: ctx.db, audit: ctx.audit });

  app.post(
    '/api/v1/identities',
    {
      config: { permission: ['create', 'Identity'] },
      schema: {
        tags,
        operationId: 'createIdentity',
        summary: 'Create a machine identity',
        body: z.strictObject({ name: identityName, role: slug('role', 64) }),
        response: { 201: identitySchema },
      },
    },
    async (req, reply) =>
      reply
        .code(201)
        .send(identityView(await identities.create(actorOf(req), whoOf(req), req.body))),
  );

  app.get(
    '/api/v1/identities',
    {
      config: { permission: ['read', 'Identity'] },
      schema: {
        tags,
        operationId: 'listIdentities',
        summary: 'List machine identities',
        querystring: pageQuery,
        response: { 200: pageSchema(identitySchema) },
      },
    },
    async (req) => {
      const page = await identities.list(actorOf(req).orgId, req.query.cursor, req.query.limit);
      return { items: page.items.map(identityView), nextCursor: page.nextCursor };
    },
  );

  app.get(
    '/api/v1/identities/:id',
    {
      config: { permission: ['read', 'Identity'] },
      schema: {
        tags,
        operationId: 'getIdentity',
        summary: 'One machine identity',
        params: idParams,
        response: { 200: identitySchema },
      },
    },
    async (req) => identityView(await identities.get(actorOf(req).orgId, req.params.id)),
  );

  app.patch(
    '/api/v1/identities/:id',
    {
      config: { permission: ['edit', 'Identity'] },
      schema: {
        tags,
        operationId: 'updateIdentity',
        summary: 'Rename an identity or change its role',
        params: idParams,
        body: z.strictObject({
          name: identityName.optional(),
          role: slug('role', 64).optional(),
        }),
        response: { 200: identitySchema },
      },
    },
    async (req) =>
      identityView(await identities.update(actorOf(req), whoOf(req), req.params.id, req.body)),
  );

  app.delete(
    '/api/v1/identities/:id',
    {
      config: { permission: ['delete', 'Identity'] },
      schema: {
        tags,
        operationId: 'deleteIdentity',
        summary: 'Delete an identity and its tokens',
        params: idParams,
        response: { 204: noContent },
      },
    },
    async (req, reply) => {
      await identities.remove(actorOf(req), whoOf(req), req.params.id);
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/api/v1/identities/:id/tokens',
    {
      config: { permission: ['edit', 'Identity'] },
      schema: {
        tags,
        operationId: 'createIdentityToken',
        summary: 'Create an access token for an identity (shown once)',
        params: idParams,
        body: z.strictObject({
          // Shown in token lists and audit entries: nothing hidden or reordered, as for names.
          name: z
            .string()
            .trim()
            .max(128, 'name must be at most 128 characters')
            .refine(
              (s) => !/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u.test(s),
              'name must not contain control, invisible, text-direction or line-break characters',
            )
            .refine(
              (s) =>
                !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s),
              'name must not contain invalid Unicode',
            )
            .default(''),
          ttlSeconds: z
            .number()
            .int('ttlSeconds must be a whole number')
            .min(60, 'ttlSeconds must be at least 60')
            .max(MAX_TOKEN_TTL, `ttlSeconds must be at most ${MAX_TOKEN_TTL} (one year)`)
            .default(30 * 86400),
        }),
        response: {
          201: z.object({
            id: z.string(),
            name: z.string(),
            token: z.string(),
            tokenType: z.literal('Bearer'),
            expiresAt: z.string(),
          }),
        },
      },
    },
    async (req, reply) => {
      const t = await identities.issueToken(actorOf(req), whoOf(req), req.params.id, req.body);
      return reply.code(201).send({
        id: t.id,
        name: t.name,
        token: t.token,
        tokenType: 'Bearer' as const,
        expiresAt: t.expiresAt.toISOString(),
      });
    },
  );

  app.get(
    '/api/v1/identities/:id/tokens',
    {
      config: { permission: ['read', 'Identity'] },
      schema: {
        tags,
        operationId: 'listIdentityTokens',
        summary: "An identity's access tokens, newest first (never the secret)",
        params: idParams,
        querystring: pageQuery,
        response: { 200: pageSchema(tokenSchema) },
      },
    },
    async (req) => {
      const page = await identities.listTokens(
        actorOf(req).orgId,
        req.params.id,
        req.query.cursor,
        req.query.limit,
      );
      return { items: page.items.map(tokenView), nextCursor: page.nextCursor };
    },
  );

  app.delete(
    '/api/v1/identities/:id/tokens/:tokenId',
    {
      config: { permission: ['edit', 'Identity'] },
      schema: {
        tags,
        operationId: 'revokeIdentityToken',
        summary: 'Revoke an access token',
        params: z.object({
          id: z.uuid('id must be a UUID'),
          tokenId: z.uuid('tokenId must be a UUID'),
        }),
        response: { 204: noContent },
      },
    },
    async (req, reply) => {
      await identities.revokeToken(actorOf(req), whoOf(req), req.params.id, req.params.tokenId);
      return reply.code(204).send(null);
    },
  );
}
