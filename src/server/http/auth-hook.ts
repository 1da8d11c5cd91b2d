import type { FastifyInstance } from 'fastify';
import type { Actor } from '../auth/actor.js';
import { authenticate } from '../auth/authenticate.js';
import type { AppContext } from '../context.js';
import { forbidden } from './errors.js';

export const API_PREFIX = '/api/v1';

export function permissionDenied(actor: Actor, action: string, subject: string) {
  return forbidden(
    `Permission denied: your role "${actor.role}" may not ${action} ${subject} (needs ${subject}:${action}).`,
    { action, subject },
  );
}

/**
 * Every API route must say who may call it. Registration fails for a route that declares
 * neither `auth` nor `permission`, so an unprotected route cannot ship by omission.
 * Authentication and permission run before the body is parsed: a caller without access
 * learns nothing from validation messages.
 */
export function installAuth(app: FastifyInstance, ctx: AppContext): void {
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
    const actor = await authenticate(ctx, req);
    req.actor = actor;
    if (cfg.permission) {
      const [action, subject] = cfg.permission;
      if (!actor.ability.can(action, subject)) throw permissionDenied(actor, action, subject);
    }
    if (cfg.license) await ctx.licenses.requireFeature(actor.orgId, cfg.license);
  });
}
