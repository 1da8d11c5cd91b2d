import cookie from '@fastify/cookie';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, {
  type FastifyError,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import {
  jsonSchemaTransform,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import { auditRoutes } from './audit/routes.js';
import { authenticate } from './auth/authenticate.js';
import type { CredentialCache } from './auth/credential-cache.js';
import { authRoutes } from './auth/routes.js';
import type { AppContext } from './context.js';
import { API_PREFIX, installAuth } from './http/auth-hook.js';
import { installJsonBodyParser } from './http/json-body.js';
import { installErrorHandling } from './http/error-handler.js';
import { DATABASE_UNAVAILABLE } from './http/errors.js';
import { pendingMigrations } from './db/migrate.js';
import type { Api } from './http/schemas.js';
import { identityRoutes } from './identities/routes.js';
import { licenseRoutes } from './license/routes.js';
import { organizationRoutes } from './orgs/routes.js';
import { roleRoutes } from './roles/routes.js';
import { userRoutes } from './users/routes.js';

/** A feature adds its routes here; each module declares the permission of every route. */
export type RouteModule = (app: Api, ctx: AppContext) => void;

export const CORE_ROUTES: RouteModule[] = [
  authRoutes,
  userRoutes,
  identityRoutes,
  roleRoutes,
  organizationRoutes,
  licenseRoutes,
  auditRoutes,
];

export interface BuildAppOptions {
  logger: FastifyBaseLogger;
  /** Routes beyond the core (gateways, pools, consumers), registered the same way. */
  modules?: RouteModule[];
  /** Extra plain routes outside /api/v1 (e.g. /metrics). */
  extra?: (app: FastifyInstance) => void;
}

const CHANGES = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * Any change through the API clears the whole credential cache once its route has run and
 * before its answer leaves, whatever the answer (a route may commit and then fail): the next
 * request after a logout, a revoked token, a removed member or an edited role is then resolved
 * from the database. Why everything, every time: writes are rare next to reads, so a full
 * flush is cheap, and unlike invalidating what each route touched it cannot miss a path.
 * A request the auth hook turned away ran no route code and changed nothing; not clearing for
 * it keeps unauthenticated traffic from emptying the cache at will.
 */
function forgetCredentialsOnChange(app: FastifyInstance, credentials: CredentialCache): void {
  const admitted = new WeakSet<FastifyRequest>();
  // preParsing runs after every onRequest hook, the auth hook included.
  app.addHook('preParsing', (req, _reply, payload, done) => {
    admitted.add(req);
    done(null, payload);
  });
  app.addHook('onSend', (req, reply, payload, done) => {
    if (CHANGES.has(req.method) && req.url.startsWith(API_PREFIX) && admitted.has(req)) {
      const databaseAway =
        reply.statusCode === 503 &&
        typeof payload === 'string' &&
        payload.includes(`"${DATABASE_UNAVAILABLE.error.code}"`);
      credentials.clear({ databaseAway });
    }
    done(null, payload);
  });
}

export async function buildApp(ctx: AppContext, opts: BuildAppOptions): Promise<Api> {
  const app = Fastify({
    loggerInstance: opts.logger,
    // X-Forwarded-For is believed only from configured proxies: otherwise any client could
    // pick its own IP and step around per-IP rate limits or fake the audit trail.
    trustProxy: ctx.config.trustProxy,
    bodyLimit: 1024 * 1024,
    // Names in paths (targets, pools, identities) may be longer than Fastify's default 100: a
    // long one must reach its route and get that route's answer, not "No route".
    routerOptions: { maxParamLength: 512 },
    // A path that is not valid percent-encoding (/api/v1/access-targets/%ff) gets the API's
    // error shape like any other bad request, not Fastify's own.
    frameworkErrors: (err: FastifyError, _req: FastifyRequest, reply: FastifyReply) =>
      void reply.code(400).send({
        error: {
          code: 'bad_request',
          message:
            err.code === 'FST_ERR_BAD_URL'
              ? 'The request path is not valid: it contains a malformed percent-encoding.'
              : 'The request could not be routed.',
        },
      }),
  }).withTypeProvider<ZodTypeProvider>();

  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  installErrorHandling(app);
  installJsonBodyParser(app);

  await app.register(cookie);
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'gatepool API',
        version: '0.1.0',
        description:
          'Reach resources in private networks through gateways and gateway pools. Authenticate with `Authorization: Bearer <token>` (session or machine-identity access token).',
      },
      components: {
        securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
  });
  await app.register(swaggerUi, { routePrefix: '/api/docs' });

  installAuth(app, { authenticate: (req) => authenticate(ctx, req), licenses: ctx.licenses });
  forgetCredentialsOnChange(app, ctx.credentials);

  app.get('/healthz', { schema: { hide: true } }, async () => ({ status: 'ok' }));
  app.get('/readyz', { schema: { hide: true } }, async (_req, reply) => {
    try {
      await ctx.database.ping();
      // Reachable is not enough: a database dropped and recreated under a running platform
      // answers `select 1` while every request fails on its missing tables.
      const { pending } = await pendingMigrations(ctx.database);
      if (pending.length)
        return reply.code(503).send({
          error: {
            code: 'not_ready',
            message: `The platform's database lacks ${pending.length} of gatepool's migrations (it was dropped and recreated, or an older copy restored): restart the platform to bring it up to date.`,
          },
        });
      return { status: 'ready', database: ctx.database.driver };
    } catch (err) {
      ctx.log.warn({ err: (err as Error).message }, 'readiness check failed: database unreachable');
      return reply.code(503).send({
        error: { code: 'not_ready', message: "The platform's database is not reachable." },
      });
    }
  });

  for (const mod of [...CORE_ROUTES, ...(opts.modules ?? [])]) mod(app, ctx);
  opts.extra?.(app);
  return app;
}
