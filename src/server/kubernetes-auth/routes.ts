/**
 * Kubernetes auth for machine identities (DESIGN §6, issue 5):
 * - config CRUD under /api/v1/identities/:identityId/kubernetes-auth (one per identity);
 * - login at /api/v1/auth/kubernetes-auth/login: a workload posts its service-account JWT, the
 *   platform has the cluster review it (through the configured gateway or pool), checks the
 *   allow-lists and issues an identity access token.
 * The token-reviewer JWT is stored encrypted and never leaves the platform except as the bearer
 * of a TokenReview sent over TLS verified against the config's CA.
 */
import { randomUUID, X509Certificate } from 'node:crypto';
import { and, eq } from 'drizzle-orm';
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { actorOf, auditActor, auditContext, type Actor } from '../auth/actor.js';
import { RateLimiter } from '../auth/rate-limit.js';
import { newToken } from '../auth/tokens.js';
import type { AppContext } from '../context.js';
import {
  gatewayPools,
  gateways,
  identities,
  identityAccessTokens,
  identityKubernetesAuths,
  organizations,
} from '../db/schema.js';
import { findGateway } from '../gateways/queries.js';
import { permissionDenied } from '../http/auth-hook.js';
import {
  AppError,
  conflict,
  isForeignKeyViolation,
  isUniqueViolation,
  notFound,
  tooManyRequests,
  unprocessable,
} from '../http/errors.js';
import type { Api } from '../http/schemas.js';
import { findIdentity } from '../identities/routes.js';
import { assertCanManageHolder } from '../rbac/grant.js';
import { NoGatewayAvailableError, type Attempt } from '../pools/failover.js';
import { findPool } from '../pools/runtime.js';
import {
  CONFIG_FAILURES,
  decideLogin,
  judgeProbe,
  PROBE_TOKEN,
  reviewToken,
  type Connection,
  type LoginFailureReason,
} from './service.js';
import { parseKubernetesHost } from './token-review.js';

const MAX_TTL = 365 * 86400;
const DEFAULT_TTL = 3600;
const DEFAULT_MAX_TTL = 86400;
/** One login's TokenReview round trip; logins are interactive, so fail fast. */
const LOGIN_REVIEW_TIMEOUT_MS = 5_000;
const SAVE_REVIEW_TIMEOUT_MS = 8_000;
/** Extra reviews after a member died mid-review (see reviewToken). */
const LOGIN_RETRIES = 2;
/**
 * Logins per client IP per minute. Every pod of a cluster usually egresses through a handful of
 * node IPs, so this is generous; it bounds how hard one source can drive TokenReviews.
 */
export const LOGIN_LIMIT_PER_MINUTE = 600;

const k8sNamespace = z
  .string()
  .regex(
    /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/,
    'allowedNamespaces entries must be Kubernetes namespace names (lowercase letters, digits, hyphens)',
  )
  .max(63, 'allowedNamespaces entries must be at most 63 characters');
const k8sSaName = z
  .string()
  .regex(
    /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/,
    'allowedNames entries must be Kubernetes service-account names (lowercase letters, digits, "-" and ".")',
  )
  .max(253, 'allowedNames entries must be at most 253 characters');
const kubernetesHost = z
  .string()
  .trim()
  .max(2048, 'kubernetesHost must be at most 2048 characters')
  .refine(
    (v) => parseKubernetesHost(v) !== null,
    'kubernetesHost must be an https URL such as "https://10.0.0.1:6443"',
  );
const caCert = z
  .string()
  .max(256 * 1024, 'caCert must be at most 256 KiB')
  .refine(
    isPemBundleOrEmpty,
    'caCert must be one or more PEM certificates ("-----BEGIN CERTIFICATE-----…"), or empty for the system CAs',
  );
const tokenReviewerJwt = z
  .string()
  .trim()
  .min(1, 'tokenReviewerJwt must not be empty (send null to remove it)')
  .max(16 * 1024, 'tokenReviewerJwt must be at most 16 KiB');
const allowedNamespaces = z
  .array(k8sNamespace)
  .max(200, 'allowedNamespaces may list at most 200 namespaces');
const allowedNames = z
  .array(k8sSaName)
  .max(200, 'allowedNames may list at most 200 service accounts');
const allowedAudience = z
  .string()
  .trim()
  .max(256, 'allowedAudience must be at most 256 characters');
const ttl = (field: string) =>
  z
    .number()
    .int(`${field} must be a whole number of seconds`)
    .min(60, `${field} must be at least 60 seconds`)
    .max(MAX_TTL, `${field} must be at most ${MAX_TTL} seconds (one year)`);
const gatewayId = z.uuid('gatewayId must be a UUID');
const gatewayPoolId = z.uuid('gatewayPoolId must be a UUID');
const params = z.object({ identityId: z.uuid('identityId must be a UUID') });

const fields = {
  kubernetesHost,
  caCert: caCert.nullable().optional(),
  tokenReviewerJwt: tokenReviewerJwt.nullable().optional(),
  allowedNamespaces: allowedNamespaces.optional(),
  allowedNames: allowedNames.optional(),
  allowedAudience: allowedAudience.nullable().optional(),
  accessTokenTtl: ttl('accessTokenTtl').optional(),
  accessTokenMaxTtl: ttl('accessTokenMaxTtl').optional(),
  gatewayId: gatewayId.nullable().optional(),
  gatewayPoolId: gatewayPoolId.nullable().optional(),
};
const ONE_REF_MESSAGE = 'give at most one of gatewayId and gatewayPoolId';
const TTL_ORDER_MESSAGE = 'accessTokenTtl must not exceed accessTokenMaxTtl';
type RefFields = { gatewayId?: string | null; gatewayPoolId?: string | null };
const atMostOneRef = (b: RefFields) => !(b.gatewayId && b.gatewayPoolId);

const createBody = z
  .strictObject(fields)
  .refine(atMostOneRef, { message: ONE_REF_MESSAGE, path: ['gatewayPoolId'] })
  .refine(
    (b) =>
      (b.accessTokenTtl ?? DEFAULT_TTL) <=
      (b.accessTokenMaxTtl ?? Math.max(DEFAULT_MAX_TTL, b.accessTokenTtl ?? 0)),
    {
      message: TTL_ORDER_MESSAGE,
      path: ['accessTokenTtl'],
    },
  );
const patchBody = z
  .strictObject({ ...fields, kubernetesHost: kubernetesHost.optional() })
  .refine((b) => Object.keys(b).length > 0, 'give at least one field to change')
  .refine(atMostOneRef, { message: ONE_REF_MESSAGE, path: ['gatewayPoolId'] });
const loginBody = z.strictObject({
  identityId: z.uuid('identityId must be a UUID'),
  jwt: z
    .string()
    .trim()
    .min(1, 'jwt must not be empty')
    .max(16 * 1024, 'jwt must be at most 16 KiB'),
});

/** Every PEM block must be a certificate Node can parse (what TLS will be given). */
function isPemBundleOrEmpty(text: string): boolean {
  if (!text.trim()) return true;
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g);
  if (!blocks?.length) return false;
  if (text.replace(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g, '').trim())
    return false;
  try {
    for (const b of blocks) new X509Certificate(b);
    return true;
  } catch {
    return false;
  }
}

type ConfigRow = typeof identityKubernetesAuths.$inferSelect;

export interface Validation {
  /**
   * verified: a TokenReview round trip with the reviewer credentials succeeded;
   * reachable: TLS and reachability verified, no reviewer JWT to prove permission with;
   * unverified: no healthy gateway could carry the check (saved anyway, see warnings);
   * skipped: no connection setting changed.
   */
  status: 'verified' | 'reachable' | 'unverified' | 'skipped';
  message: string;
  gatewayId: string | null;
  gatewayName: string | null;
}

export interface KubernetesAuthRouteOptions {
  /** Limits logins per client IP (default LOGIN_LIMIT_PER_MINUTE per minute). */
  loginLimiter?: RateLimiter;
}

export function kubernetesAuthRoutes(
  app: Api,
  ctx: AppContext,
  opts: KubernetesAuthRouteOptions = {},
): void {
  const tags = ['kubernetes auth'];
  const loginLimiter = opts.loginLimiter ?? new RateLimiter(LOGIN_LIMIT_PER_MINUTE, 60_000);
  const path = '/api/v1/identities/:identityId/kubernetes-auth';

  async function findConfig(orgId: string, identityId: string): Promise<ConfigRow> {
    const [row] = await ctx.db
      .select()
      .from(identityKubernetesAuths)
      .where(
        and(
          eq(identityKubernetesAuths.orgId, orgId),
          eq(identityKubernetesAuths.identityId, identityId),
        ),
      );
    if (!row) throw notFound('Kubernetes auth config of this identity');
    return row;
  }

  async function view(row: ConfigRow, identityName: string) {
    const [gw] = row.gatewayId
      ? await ctx.db
          .select({ id: gateways.id, name: gateways.name })
          .from(gateways)
          .where(and(eq(gateways.orgId, row.orgId), eq(gateways.id, row.gatewayId)))
      : [];
    const [pool] = row.gatewayPoolId
      ? await ctx.db
          .select({ id: gatewayPools.id, name: gatewayPools.name })
          .from(gatewayPools)
          .where(and(eq(gatewayPools.orgId, row.orgId), eq(gatewayPools.id, row.gatewayPoolId)))
      : [];
    return {
      identityId: row.identityId,
      identityName,
      kubernetesHost: row.kubernetesHost,
      caCert: row.caCert || null,
      tokenReviewerJwtSet: row.tokenReviewerJwtEnc !== null,
      allowedNamespaces: row.allowedNamespaces,
      allowedNames: row.allowedNames,
      allowedAudience: row.allowedAudience || null,
      accessTokenTtl: row.accessTokenTtl,
      accessTokenMaxTtl: row.accessTokenMaxTtl,
      gatewayId: row.gatewayId,
      gatewayPoolId: row.gatewayPoolId,
      gateway: gw ?? null,
      gatewayPool: pool ?? null,
      createdAt: row.createdAt.toISOString(),
      updatedAt: row.updatedAt.toISOString(),
    };
  }

  /**
   * Authorizes what a save newly references (DESIGN §6): the `attach` permission, the org
   * (another org's id is 404), the pools license, and the require-pools policy. An unchanged
   * reference is not re-checked, so a downgrade or a policy change never blocks unrelated edits.
   */
  async function authorizeReference(
    actor: Actor,
    before: Connection | null,
    next: Connection,
  ): Promise<void> {
    if (next.gatewayPoolId && next.gatewayPoolId !== before?.gatewayPoolId) {
      if (!actor.ability.can('attach', 'GatewayPool'))
        throw permissionDenied(actor, 'attach', 'GatewayPool');
      await findPool(ctx.db, actor.orgId, next.gatewayPoolId);
      await ctx.licenses.requireFeature(actor.orgId, 'gatewayPool');
    }
    if (next.gatewayId && next.gatewayId !== before?.gatewayId) {
      if (!actor.ability.can('attach', 'Gateway'))
        throw permissionDenied(actor, 'attach', 'Gateway');
      await findGateway(ctx.db, actor.orgId, next.gatewayId);
      const [org] = await ctx.db
        .select({ requireGatewayPools: organizations.requireGatewayPools })
        .from(organizations)
        .where(eq(organizations.id, actor.orgId));
      if (org?.requireGatewayPools) {
        throw new AppError(
          403,
          'policy_violation',
          'Your organization requires gateway pools: attach a gateway pool (gatewayPoolId) instead of an individual gateway.',
          { policy: 'requireGatewayPools' },
        );
      }
    }
  }

  /** Is the path to the cluster up at all? An outage saves with a warning instead of failing. */
  async function outage(orgId: string, conn: Connection): Promise<string | null> {
    if (conn.gatewayPoolId) {
      await ctx.poolRuntime.ensureLoaded();
      const pool = ctx.poolRuntime.pool(orgId, conn.gatewayPoolId);
      if (!pool) return 'the gateway pool is not loaded yet';
      const s = ctx.poolRuntime.summary(pool);
      if (s.healthyMemberCount === 0) {
        return `gateway pool "${pool.name}" has no healthy member (${s.memberCount} member${s.memberCount === 1 ? '' : 's'})`;
      }
    } else if (conn.gatewayId) {
      const row = await findGateway(ctx.db, orgId, conn.gatewayId);
      const health = ctx.directory.view(row).health;
      if (health !== 'healthy')
        return `gateway "${row.name}" is ${health === 'never-connected' ? 'not connected yet' : health}`;
    }
    return null;
  }

  /**
   * Save-time check: a TokenReview round trip through the chosen path. No healthy member (or
   * members failing only in transport) → save with a warning; the cluster unreachable,
   * untrusted or refusing the reviewer through a working gateway → 422 with the reason.
   */
  async function validate(
    orgId: string,
    conn: Connection,
    reviewerJwt: string | null,
  ): Promise<{ validation: Validation; warnings: string[] }> {
    const host = conn.kubernetesHost;
    const unverified = (why: string) => {
      const message = `Saved without verifying the connection to ${host}: ${why}. Logins fail until it is reachable.`;
      ctx.log.warn(
        {
          orgId,
          kubernetesHost: host,
          gatewayId: conn.gatewayId,
          gatewayPoolId: conn.gatewayPoolId,
        },
        `kubernetes auth saved unverified: ${why}`,
      );
      return {
        validation: { status: 'unverified' as const, message, gatewayId: null, gatewayName: null },
        warnings: [message],
      };
    };
    const down = await outage(orgId, conn);
    if (down) return unverified(down);
    let outcome;
    try {
      outcome = await reviewToken(ctx.poolRuntime, orgId, conn, {
        token: PROBE_TOKEN,
        bearerToken: reviewerJwt,
        audiences: [],
        timeoutMs: SAVE_REVIEW_TIMEOUT_MS,
        retries: 1,
      });
    } catch (err) {
      if (!(err instanceof NoGatewayAvailableError)) throw err;
      // A gateway that answered "target unreachable" or "not allowed" is a working gateway
      // telling us about the cluster; anything else is the path being down.
      const answered = err.attempts.filter(
        (a) => a.reason === 'unreachable' || a.reason === 'refused',
      );
      if (!answered.length) return unverified(err.message);
      throw unprocessable(`Cannot reach the Kubernetes API at ${host}: ${err.message}`, {
        reason: answered.some((a) => a.reason === 'refused') ? 'gateway_refused' : 'unreachable',
        attempts: err.attempts,
      });
    }
    const verdict = judgeProbe(outcome.result, reviewerJwt !== null);
    const via = outcome.gatewayName ? ` through gateway "${outcome.gatewayName}"` : '';
    if (verdict.status === 'failed') {
      throw unprocessable(
        `Kubernetes API at ${host} failed the TokenReview check${via}: ${verdict.message}`,
        {
          reason: verdict.reason,
          gatewayId: outcome.gatewayId,
          gatewayName: outcome.gatewayName,
        },
      );
    }
    return {
      validation: {
        status: verdict.status,
        message: verdict.message + (via ? ` (checked${via})` : ''),
        gatewayId: outcome.gatewayId,
        gatewayName: outcome.gatewayName,
      },
      warnings: [],
    };
  }

  const changedKeys = (body: Record<string, unknown>) =>
    Object.keys(body).filter((k) => k !== 'tokenReviewerJwt');

  app.post(
    path,
    {
      config: { permission: ['create', 'KubernetesAuth'] },
      schema: {
        tags,
        summary:
          'Configure Kubernetes auth for an identity (validated through its gateway or pool)',
        params,
        body: createBody,
      },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      const identity = await findIdentity(ctx, actor.orgId, req.params.identityId);
      // Configuring a login for an identity mints its credentials: same standing as minting a token.
      await assertCanManageHolder(ctx.db, actor, identity, 'identity');
      const b = req.body;
      const conn: Connection = {
        kubernetesHost: b.kubernetesHost,
        caCert: b.caCert ?? '',
        gatewayId: b.gatewayId ?? null,
        gatewayPoolId: b.gatewayPoolId ?? null,
      };
      await authorizeReference(actor, null, conn);
      const [existing] = await ctx.db
        .select({ id: identityKubernetesAuths.identityId })
        .from(identityKubernetesAuths)
        .where(
          and(
            eq(identityKubernetesAuths.orgId, actor.orgId),
            eq(identityKubernetesAuths.identityId, identity.id),
          ),
        );
      if (existing)
        throw conflict(
          `Identity "${identity.name}" already has Kubernetes auth; change it with PATCH.`,
        );
      const reviewerJwt = b.tokenReviewerJwt ?? null;
      const { validation, warnings } = await validate(actor.orgId, conn, reviewerJwt);
      const accessTokenTtl = b.accessTokenTtl ?? DEFAULT_TTL;
      try {
        await ctx.db.transaction(async (tx) => {
          await tx.insert(identityKubernetesAuths).values({
            identityId: identity.id,
            orgId: actor.orgId,
            ...conn,
            tokenReviewerJwtEnc: reviewerJwt === null ? null : ctx.box.encrypt(reviewerJwt),
            allowedNamespaces: b.allowedNamespaces ?? [],
            allowedNames: b.allowedNames ?? [],
            allowedAudience: b.allowedAudience ?? '',
            accessTokenTtl,
            accessTokenMaxTtl: b.accessTokenMaxTtl ?? Math.max(DEFAULT_MAX_TTL, accessTokenTtl),
          });
          await ctx.audit.record(
            auditActor(actor),
            'kubernetes-auth.create',
            {
              identityId: identity.id,
              identityName: identity.name,
              kubernetesHost: conn.kubernetesHost,
              gatewayId: conn.gatewayId,
              gatewayPoolId: conn.gatewayPoolId,
              reviewerJwtSet: reviewerJwt !== null,
              validation: validation.status,
            },
            auditContext(req, actor.orgId),
            tx,
          );
        });
      } catch (err) {
        throw mapWriteError(err, identity.name);
      }
      const row = await findConfig(actor.orgId, identity.id);
      return reply.code(201).send({ ...(await view(row, identity.name)), validation, warnings });
    },
  );

  app.get(
    path,
    {
      config: { permission: ['read', 'KubernetesAuth'] },
      schema: {
        tags,
        summary: "An identity's Kubernetes auth config (never the reviewer JWT)",
        params,
      },
    },
    async (req) => {
      const { orgId } = actorOf(req);
      const identity = await findIdentity(ctx, orgId, req.params.identityId);
      return view(await findConfig(orgId, identity.id), identity.name);
    },
  );

  app.patch(
    path,
    {
      config: { permission: ['edit', 'KubernetesAuth'] },
      schema: {
        tags,
        summary:
          'Change Kubernetes auth; null clears gatewayId / gatewayPoolId / tokenReviewerJwt, omitted keeps them',
        params,
        body: patchBody,
      },
    },
    async (req) => {
      const actor = actorOf(req);
      const identity = await findIdentity(ctx, actor.orgId, req.params.identityId);
      // Configuring a login for an identity mints its credentials: same standing as minting a token.
      await assertCanManageHolder(ctx.db, actor, identity, 'identity');
      const before = await findConfig(actor.orgId, identity.id);
      const b = req.body;
      // Setting one reference replaces the other (a config has at most one).
      let gwId = b.gatewayId === undefined ? before.gatewayId : b.gatewayId;
      let poolId = b.gatewayPoolId === undefined ? before.gatewayPoolId : b.gatewayPoolId;
      if (b.gatewayPoolId && b.gatewayId === undefined) gwId = null;
      if (b.gatewayId && b.gatewayPoolId === undefined) poolId = null;
      const conn: Connection = {
        kubernetesHost: b.kubernetesHost ?? before.kubernetesHost,
        caCert: b.caCert === undefined ? before.caCert : (b.caCert ?? ''),
        gatewayId: gwId,
        gatewayPoolId: poolId,
      };
      const accessTokenTtl = b.accessTokenTtl ?? before.accessTokenTtl;
      const accessTokenMaxTtl = b.accessTokenMaxTtl ?? before.accessTokenMaxTtl;
      if (accessTokenTtl > accessTokenMaxTtl) {
        throw new AppError(
          400,
          'validation_failed',
          `Invalid request: body.accessTokenTtl: ${TTL_ORDER_MESSAGE} (${accessTokenTtl} > ${accessTokenMaxTtl})`,
          {
            fields: [{ field: 'body.accessTokenTtl', message: TTL_ORDER_MESSAGE }],
          },
        );
      }
      await authorizeReference(actor, before, conn);
      const reviewerJwt =
        b.tokenReviewerJwt === undefined
          ? before.tokenReviewerJwtEnc
            ? ctx.box.decrypt(before.tokenReviewerJwtEnc)
            : null
          : b.tokenReviewerJwt;
      const connectionTouched = [
        'kubernetesHost',
        'caCert',
        'tokenReviewerJwt',
        'gatewayId',
        'gatewayPoolId',
      ].some((k) => k in b);
      const { validation, warnings } = connectionTouched
        ? await validate(actor.orgId, conn, reviewerJwt)
        : {
            validation: {
              status: 'skipped' as const,
              message: 'No connection setting changed.',
              gatewayId: null,
              gatewayName: null,
            },
            warnings: [],
          };
      try {
        await ctx.db.transaction(async (tx) => {
          await tx
            .update(identityKubernetesAuths)
            .set({
              ...conn,
              ...(b.tokenReviewerJwt === undefined
                ? {}
                : {
                    tokenReviewerJwtEnc:
                      b.tokenReviewerJwt === null ? null : ctx.box.encrypt(b.tokenReviewerJwt),
                  }),
              ...(b.allowedNamespaces ? { allowedNamespaces: b.allowedNamespaces } : {}),
              ...(b.allowedNames ? { allowedNames: b.allowedNames } : {}),
              ...(b.allowedAudience === undefined
                ? {}
                : { allowedAudience: b.allowedAudience ?? '' }),
              accessTokenTtl,
              accessTokenMaxTtl,
              updatedAt: new Date(),
            })
            .where(
              and(
                eq(identityKubernetesAuths.orgId, actor.orgId),
                eq(identityKubernetesAuths.identityId, identity.id),
              ),
            );
          await ctx.audit.record(
            auditActor(actor),
            'kubernetes-auth.update',
            {
              identityId: identity.id,
              identityName: identity.name,
              changed: changedKeys(b),
              reviewerJwtChanged: b.tokenReviewerJwt !== undefined,
              gatewayId: conn.gatewayId,
              gatewayPoolId: conn.gatewayPoolId,
              validation: validation.status,
            },
            auditContext(req, actor.orgId),
            tx,
          );
        });
      } catch (err) {
        throw mapWriteError(err, identity.name);
      }
      const row = await findConfig(actor.orgId, identity.id);
      return { ...(await view(row, identity.name)), validation, warnings };
    },
  );

  app.delete(
    path,
    {
      config: { permission: ['delete', 'KubernetesAuth'] },
      schema: { tags, summary: "Remove an identity's Kubernetes auth", params },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      const identity = await findIdentity(ctx, actor.orgId, req.params.identityId);
      // Configuring a login for an identity mints its credentials: same standing as minting a token.
      await assertCanManageHolder(ctx.db, actor, identity, 'identity');
      await ctx.db.transaction(async (tx) => {
        const removed = await tx
          .delete(identityKubernetesAuths)
          .where(
            and(
              eq(identityKubernetesAuths.orgId, actor.orgId),
              eq(identityKubernetesAuths.identityId, identity.id),
            ),
          )
          .returning({ id: identityKubernetesAuths.identityId });
        if (!removed.length) throw notFound('Kubernetes auth config of this identity');
        await ctx.audit.record(
          auditActor(actor),
          'kubernetes-auth.delete',
          { identityId: identity.id, identityName: identity.name },
          auditContext(req, actor.orgId),
          tx,
        );
      });
      return reply.code(204).send();
    },
  );

  app.post(
    '/api/v1/auth/kubernetes-auth/login',
    {
      config: { auth: 'public' },
      schema: {
        tags: ['auth', ...tags],
        summary:
          'Log in a machine identity with a Kubernetes service-account JWT (validated with the TokenReview API)',
        body: loginBody,
        security: [],
      },
    },
    async (req) => {
      const wait = loginLimiter.hit(`k8s-login:${req.ip}`);
      if (wait)
        throw tooManyRequests(
          `Too many Kubernetes logins from this address; try again in ${wait} s.`,
          wait,
        );
      const { identityId, jwt } = req.body;
      const [found] = await ctx.db
        .select({
          config: identityKubernetesAuths,
          identityName: identities.name,
          orgId: identities.orgId,
        })
        .from(identities)
        .leftJoin(identityKubernetesAuths, eq(identityKubernetesAuths.identityId, identities.id))
        .where(eq(identities.id, identityId));
      const cfg = found?.config;
      if (!found || !cfg) {
        if (found)
          await recordFailure(
            req,
            found.orgId,
            identityId,
            found.identityName,
            'not_configured',
            'no Kubernetes auth is configured',
            null,
            null,
          );
        throw loginFailed('not_configured', 'this identity has no Kubernetes auth configured');
      }
      const reviewerJwt = cfg.tokenReviewerJwtEnc ? ctx.box.decrypt(cfg.tokenReviewerJwtEnc) : null;
      let outcome;
      try {
        outcome = await reviewToken(ctx.poolRuntime, cfg.orgId, cfg, {
          token: jwt,
          bearerToken: reviewerJwt ?? jwt,
          audiences: cfg.allowedAudience ? [cfg.allowedAudience] : [],
          timeoutMs: LOGIN_REVIEW_TIMEOUT_MS,
          retries: LOGIN_RETRIES,
        });
      } catch (err) {
        if (!(err instanceof NoGatewayAvailableError)) throw err;
        await recordFailure(
          req,
          cfg.orgId,
          identityId,
          found.identityName,
          'gateway_unavailable',
          err.message,
          cfg,
          { gatewayId: null, gatewayName: null, attempts: err.attempts },
        );
        ctx.log.warn(
          { identityId, attempts: err.attempts.length },
          `kubernetes login failed: ${err.message}`,
        );
        throw new AppError(
          503,
          'gateway_unavailable',
          `Kubernetes login could not reach the cluster: ${err.message}. Try again shortly.`,
          {
            reason: 'gateway_unavailable',
            attempts: err.attempts,
          },
        );
      }
      const decision = decideLogin(outcome.result, cfg);
      if (!decision.ok) {
        await recordFailure(
          req,
          cfg.orgId,
          identityId,
          found.identityName,
          decision.reason,
          decision.message,
          cfg,
          outcome,
        );
        if (CONFIG_FAILURES.has(decision.reason)) {
          ctx.log.warn(
            { identityId, reason: decision.reason, gateway: outcome.gatewayName },
            `kubernetes login failed: ${decision.message}`,
          );
        }
        throw loginFailed(decision.reason, decision.message);
      }
      const { token, hash } = newToken('identity');
      const tokenId = randomUUID();
      const expiresIn = cfg.accessTokenTtl;
      await ctx.db.transaction(async (tx) => {
        await tx.insert(identityAccessTokens).values({
          id: tokenId,
          orgId: cfg.orgId,
          identityId,
          name: `kubernetes-auth ${decision.namespace}/${decision.name}`.slice(0, 128),
          tokenHash: hash,
          expiresAt: new Date(Date.now() + expiresIn * 1000),
        });
        await ctx.audit.record(
          { type: 'identity', id: identityId, name: found.identityName },
          'kubernetes-auth.login',
          {
            identityId,
            identityName: found.identityName,
            serviceAccount: decision.user.username,
            namespace: decision.namespace,
            serviceAccountName: decision.name,
            serviceAccountUid: decision.user.uid,
            accessTokenId: tokenId,
            ...servedBy(cfg, outcome),
          },
          auditContext(req, cfg.orgId),
          tx,
        );
      });
      return {
        accessToken: token,
        expiresIn,
        accessTokenMaxTtl: cfg.accessTokenMaxTtl,
        tokenType: 'Bearer' as const,
      };
    },
  );

  /** Which path served a review, for audit entries. */
  function servedBy(cfg: Connection, outcome: ServedBy | null) {
    return {
      via: cfg.gatewayPoolId ? 'gateway-pool' : cfg.gatewayId ? 'gateway' : 'direct',
      gatewayPoolId: cfg.gatewayPoolId,
      gatewayId: outcome?.gatewayId ?? null,
      gateway: outcome?.gatewayName ?? null,
      failovers: outcome?.attempts.length ?? 0,
    };
  }

  async function recordFailure(
    req: FastifyRequest,
    orgId: string,
    identityId: string,
    identityName: string,
    reason: LoginFailureReason | 'gateway_unavailable',
    message: string,
    conn: Connection | null,
    outcome: ServedBy | null,
  ): Promise<void> {
    await ctx.audit.record(
      { type: 'anonymous', name: `kubernetes login as ${identityName}` },
      'kubernetes-auth.login-failed',
      { identityId, identityName, reason, message, ...(conn ? servedBy(conn, outcome) : {}) },
      auditContext(req, orgId),
    );
  }
}

type ServedBy = { gatewayId: string | null; gatewayName: string | null; attempts: Attempt[] };

function loginFailed(reason: LoginFailureReason, message: string): AppError {
  return new AppError(401, 'unauthorized', `Kubernetes login failed (${reason}): ${message}.`, {
    reason,
  });
}

function mapWriteError(err: unknown, identityName: string): unknown {
  if (isUniqueViolation(err))
    return conflict(
      `Identity "${identityName}" already has Kubernetes auth; change it with PATCH.`,
    );
  // The gateway or pool was deleted between the checks and the write.
  if (isForeignKeyViolation(err)) return notFound('Gateway or gateway pool');
  return err;
}
