import cookie from '@fastify/cookie';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import {
  jsonSchemaTransform,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import { auditRoutes } from './audit/routes.js';
import { authenticate } from './auth/authenticate.js';
import { authRoutes } from './auth/routes.js';
import type { AppContext } from './context.js';
import { installAuth } from './http/auth-hook.js';
import { installErrorHandling } from './http/error-handler.js';
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

export async function buildApp(ctx: AppContext, opts: BuildAppOptions): Promise<Api> {
  const app = Fastify({
    loggerInstance: opts.logger,
    // X-Forwarded-For is believed only from configured proxies: otherwise any client could
    // pick its own IP and step around per-IP rate limits or fake the audit trail.
    trustProxy: ctx.config.trustProxy,
    bodyLimit: 1024 * 1024,
  }).withTypeProvider<ZodTypeProvider>();

  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  installErrorHandling(app);

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

  app.get('/healthz', { schema: { hide: true } }, async () => ({ status: 'ok' }));
  app.get('/readyz', { schema: { hide: true } }, async (_req, reply) => {
    try {
      await ctx.database.ping();
      return { status: 'ready', database: ctx.database.driver };
    } catch (err) {
      ctx.log.warn({ err: (err as Error).message }, 'readiness check failed: database unreachable');
      return reply
        .code(503)
        .send({ error: { code: 'not_ready', message: 'The database is not reachable.' } });
    }
  });

  for (const mod of [...CORE_ROUTES, ...(opts.modules ?? [])]) mod(app, ctx);
  opts.extra?.(app);
  return app;
}
