/**
 * Kubernetes auth's HTTP surface: config CRUD under /api/v1/identities/:identityId/kubernetes-auth
 * (one per identity) and the unauthenticated login at /api/v1/auth/kubernetes-auth/login.
 * Schemas, one service call, response mapping; the rules live in service.ts.
 */
import { X509Certificate } from 'node:crypto';
import { z } from 'zod';
import { actorOf, whoOf } from '../auth/actor.js';
import { RateLimiter } from '../auth/rate-limit.js';
import { DirectTargets } from '../consumers/direct-targets.js';
import type { AppContext } from '../context.js';
import { noContent, reference, type Api } from '../http/schemas.js';
import {
  DEFAULT_MAX_TTL,
  DEFAULT_TTL,
  KubernetesAuthService,
  TTL_ORDER_MESSAGE,
  type ConfigView,
  type LoginResult,
  type SavedView,
} from './service.js';
import { parseKubernetesHost } from './token-review.js';

const MAX_TTL = 365 * 86400;

/**
 * A JWT in compact form: base64url parts joined by dots (3 for a JWS, 5 for a JWE). Anything
 * else is refused here: the value becomes an HTTP header of the TokenReview, where CR/LF, NUL
 * or non-Latin-1 characters would break the request instead of being reviewed.
 */
const JWT_SHAPE = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]*){2}(\.[A-Za-z0-9_-]*){0,2}$/;
const jwt = (field: string) =>
  z
    .string()
    .trim()
    .min(1, `${field} must not be empty`)
    .max(16 * 1024, `${field} must be at most 16 KiB`)
    .regex(
      JWT_SHAPE,
      `${field} must be a JWT: base64url parts (A-Z, a-z, 0-9, "-", "_") separated by dots`,
    );

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
const tokenReviewerJwt = jwt('tokenReviewerJwt').describe(
  'The token-reviewer JWT; send null to remove it',
);
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
  gatewayId: reference('gatewayId', 'gateway').nullable().optional(),
  gatewayPoolId: reference('gatewayPoolId', 'gateway pool').nullable().optional(),
};
const ONE_REF_MESSAGE = 'give at most one of gatewayId and gatewayPoolId';
type RefFields = { gatewayId?: string | null; gatewayPoolId?: string | null };
const atMostOneRef = (b: RefFields) => !(b.gatewayId && b.gatewayPoolId);

const createBody = z
  .strictObject(fields)
  .refine(atMostOneRef, { message: ONE_REF_MESSAGE, path: ['gatewayPoolId'] })
  .refine(
    (b) =>
      (b.accessTokenTtl ?? DEFAULT_TTL) <=
      (b.accessTokenMaxTtl ?? Math.max(DEFAULT_MAX_TTL, b.accessTokenTtl ?? 0)),
    { message: TTL_ORDER_MESSAGE, path: ['accessTokenTtl'] },
  );
const patchBody = z
  .strictObject({ ...fields, kubernetesHost: kubernetesHost.optional() })
  .refine((b) => Object.keys(b).length > 0, 'give at least one field to change')
  .refine(atMostOneRef, { message: ONE_REF_MESSAGE, path: ['gatewayPoolId'] });
const loginBody = z.strictObject({
  identityId: z.uuid('identityId must be a UUID'),
  jwt: jwt('jwt'),
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

// Each response schema `satisfies` the service's type: a field the service returns that the
// schema lacks (which the serializer would silently strip) fails to compile.
const named = z.object({ id: z.string(), name: z.string() });
const configView = z.object({
  identityId: z.string(),
  identityName: z.string(),
  kubernetesHost: z.string(),
  caCert: z.string().nullable(),
  tokenReviewerJwtSet: z.boolean(),
  allowedNamespaces: z.array(z.string()),
  allowedNames: z.array(z.string()),
  allowedAudience: z.string().nullable(),
  accessTokenTtl: z.number().int(),
  accessTokenMaxTtl: z.number().int(),
  gatewayId: z.string().nullable(),
  gatewayPoolId: z.string().nullable(),
  gateway: named.nullable(),
  gatewayPool: named.nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
}) satisfies z.ZodType<ConfigView>;
const savedView = configView.extend({
  validation: z.object({
    status: z.enum(['verified', 'reachable', 'unverified', 'skipped']),
    message: z.string(),
    gatewayId: z.string().nullable(),
    gatewayName: z.string().nullable(),
  }),
  warnings: z.array(z.string()),
}) satisfies z.ZodType<SavedView>;
const loginResult = z.object({
  accessToken: z.string(),
  expiresIn: z.number().int(),
  accessTokenMaxTtl: z.number().int(),
  tokenType: z.literal('Bearer'),
}) satisfies z.ZodType<LoginResult>;

export interface KubernetesAuthRouteOptions {
  /** Limits logins per client IP (default: GATEPOOL_K8S_LOGIN_RATE_LIMIT a minute). */
  loginLimiter?: RateLimiter;
}

export function kubernetesAuthRoutes(
  app: Api,
  ctx: AppContext,
  opts: KubernetesAuthRouteOptions = {},
): void {
  const service = new KubernetesAuthService({
    db: ctx.db,
    box: ctx.box,
    audit: ctx.audit,
    licenses: ctx.licenses,
    log: ctx.log,
    pools: ctx.poolRuntime,
    directTargets: new DirectTargets(ctx.config.directTargets),
    loginLimiter: opts.loginLimiter ?? new RateLimiter(ctx.config.k8sLoginRateLimit, 60_000),
  });
  const tags = ['kubernetes auth'];
  const path = '/api/v1/identities/:identityId/kubernetes-auth';

  app.post(
    path,
    {
      config: { permission: ['create', 'KubernetesAuth'] },
      schema: {
        tags,
        operationId: 'createKubernetesAuth',
        summary:
          'Configure Kubernetes auth for an identity (validated through its gateway or pool)',
        params,
        body: createBody,
        response: { 201: savedView },
      },
    },
    async (req, reply) =>
      reply
        .code(201)
        .send(await service.create(actorOf(req), whoOf(req), req.params.identityId, req.body)),
  );

  app.get(
    path,
    {
      config: { permission: ['read', 'KubernetesAuth'] },
      schema: {
        tags,
        operationId: 'getKubernetesAuth',
        summary: "An identity's Kubernetes auth config (never the reviewer JWT)",
        params,
        response: { 200: configView },
      },
    },
    async (req) => service.get(actorOf(req), req.params.identityId),
  );

  app.patch(
    path,
    {
      config: { permission: ['edit', 'KubernetesAuth'] },
      schema: {
        tags,
        operationId: 'updateKubernetesAuth',
        summary:
          'Change Kubernetes auth; null clears gatewayId / gatewayPoolId / tokenReviewerJwt, omitted keeps them',
        params,
        body: patchBody,
        response: { 200: savedView },
      },
    },
    async (req) => service.update(actorOf(req), whoOf(req), req.params.identityId, req.body),
  );

  app.delete(
    path,
    {
      config: { permission: ['delete', 'KubernetesAuth'] },
      schema: {
        tags,
        operationId: 'deleteKubernetesAuth',
        summary: "Remove an identity's Kubernetes auth",
        params,
        response: { 204: noContent },
      },
    },
    async (req, reply) => {
      await service.remove(actorOf(req), whoOf(req), req.params.identityId);
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/api/v1/auth/kubernetes-auth/login',
    {
      config: { auth: 'public' },
      schema: {
        tags: ['auth', ...tags],
        operationId: 'loginWithKubernetes',
        summary:
          'Log in a machine identity with a Kubernetes service-account JWT (validated with the TokenReview API)',
        body: loginBody,
        security: [],
        response: { 200: loginResult },
      },
    },
    async (req) =>
      service.login(req.body, { ip: req.ip, userAgent: req.headers['user-agent'] ?? null }),
  );
}
