/**
 * Route discovery for access-control tests: every route the running app registered, with
 * its `config` (auth / permission), so a route added later is covered without editing tests.
 *
 * Fastify keeps route options private once registered, so a test file that needs them
 * wraps the Fastify factory to add an `onRoute` collector to every instance it creates:
 *
 *   vi.mock('fastify', async (importOriginal) =>
 *     (await import('../helpers/routes.js')).withRouteCollector(await importOriginal()),
 *   );
 *   ...
 *   const routes = collectedRoutes(tp.platform.app);
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';

export interface CollectedRoute {
  method: string;
  url: string;
  config: { auth?: 'public' | 'authenticated'; permission?: [string, string] };
  /** True when the route declares a request body schema. */
  hasBody: boolean;
}

const STORE = Symbol.for('gatepool.test.collectedRoutes');
type Store = WeakMap<object, CollectedRoute[]>;

function store(): Store {
  const g = globalThis as unknown as Record<symbol, Store | undefined>;
  return (g[STORE] ??= new WeakMap());
}

type Factory = (...args: unknown[]) => FastifyInstance;

export function withRouteCollector<M extends { default: unknown }>(mod: M): M {
  const original = mod.default as Factory;
  const wrapped = function (...args: unknown[]) {
    const app = original(...args);
    const list: CollectedRoute[] = [];
    app.addHook('onRoute', (route) => {
      const methods = Array.isArray(route.method) ? route.method : [route.method];
      const config = (route.config ?? {}) as CollectedRoute['config'];
      const hasBody = !!(route.schema as { body?: unknown } | undefined)?.body;
      for (const method of methods)
        list.push({ method: String(method), url: route.url, config, hasBody });
    });
    store().set(app, list);
    return app;
  };
  Object.assign(wrapped, original);
  return { ...mod, default: wrapped, fastify: wrapped };
}

/** Routes of an app built while `withRouteCollector` was in place (throws otherwise). */
export function collectedRoutes(app: object): CollectedRoute[] {
  const list = store().get(app);
  if (!list?.length) {
    throw new Error(
      "no routes collected: mock 'fastify' with withRouteCollector in this test file",
    );
  }
  return list;
}

/** The /api/v1 routes, minus Fastify's automatic HEAD twins of GET routes. */
export function apiRoutes(app: object): CollectedRoute[] {
  const all = collectedRoutes(app).filter((r) => r.url.startsWith('/api/v1/'));
  const gets = new Set(all.filter((r) => r.method === 'GET').map((r) => r.url));
  return all.filter((r) => !(r.method === 'HEAD' && gets.has(r.url)));
}

/** Fills every `:param` of a route URL (random UUIDs unless given). */
export function fillPath(url: string, values: Record<string, string> = {}): string {
  return url.replace(/:([A-Za-z0-9_]+)/g, (_m, name: string) =>
    encodeURIComponent(values[name] ?? randomUUID()),
  );
}

export const routeName = (r: { method: string; url: string }) => `${r.method} ${r.url}`;
