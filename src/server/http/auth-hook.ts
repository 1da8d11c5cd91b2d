import type { FastifyContextConfig, FastifyInstance, FastifyRequest } from 'fastify';
import { AppError, permissionDenied } from './errors.js';

export const API_PREFIX = '/api/v1';

export { permissionDenied };

export const PASSWORD_CHANGE_REQUIRED_CODE = 'password_change_required';

/**
 * Whoever chose a person's password (the admin who invited them) could otherwise go on acting
 * as them, in every organization they later join: until the person picks their own, their
 * sessions reach only the routes marked `beforePasswordChange`.
 */
export const passwordChangeRequired = () =>
  new AppError(
    403,
    PASSWORD_CHANGE_REQUIRED_CODE,
    'Choose your own password first: the one you signed in with was set by the admin who ' +
      'invited you. POST /api/v1/auth/password, or sign in to the web UI.',
  );

/**
 * What the hook needs, handed down by the app: resolving a request's credential to its caller
 * (auth/ sits above http/, so it is a function here, not an import) and the plan check.
 */
export interface AuthHookDeps {
  // Types come from the request and route config (declared by auth/actor.ts): no import upward.
  authenticate(req: FastifyRequest): Promise<NonNullable<FastifyRequest['actor']>>;
  licenses: {
    requireFeature(
      orgId: string,
      feature: NonNullable<FastifyContextConfig['license']>,
    ): Promise<void>;
  };
}

/**
 * Every API route must say who may call it. Registration fails for a route that declares
 * neither `auth` nor `permission`, so an unprotected route cannot ship by omission.
 * Authentication and permission run before the body is parsed: a caller without access
 * learns nothing from validation messages.
 */
export function installAuth(app: FastifyInstance, deps: AuthHookDeps): void {
  app.addHook('onRoute', (route) => {
    if (!route.url.startsWith(API_PREFIX)) return;
    const cfg = route.config as { auth?: string; permission?: unknown } | undefined;
    if (!cfg?.auth && !cfg?.permission) {
      throw new Error(`route ${route.method} ${route.url} declares no auth or permission`);
    }
  });

  app.addHook('onRequest', async (req) => {
    const cfg = req.routeOptions.config;
    if (!req.routeOptions.url?.startsWith(API_PREFIX) || cfg.auth === 'public') return;
    const actor = await deps.authenticate(req);
    req.actor = actor;
    if (actor.passwordChangeRequired && !cfg.beforePasswordChange) throw passwordChangeRequired();
    if (cfg.permission) {
      const [action, subject] = cfg.permission;
      if (!actor.ability.can(action, subject)) throw permissionDenied(actor, action, subject);
    }
    if (cfg.license) await deps.licenses.requireFeature(actor.orgId, cfg.license);
  });
}
