import {
  createRootRoute,
  createRoute,
  createRouter,
  redirect,
  type AsyncRouteComponent,
} from '@tanstack/react-router';
import { createElement, type ComponentType } from 'react';
import { platformReachability } from './api/client';
import { Root } from './components/Layout';
import { Loading, NotFoundPage } from './components/ui';
import { GatewaysPage, type GatewaysSearch } from './pages/Gateways';

/** The audit log's filters, as its URL carries them. */
export interface AuditSearch {
  event?: string;
  actor?: string;
  actorType?: string;
  from?: string;
  to?: string;
}

const rootRoute = createRootRoute({ component: Root });

/** How long to wait before asking again for a page's code that did not load. */
export const CHUNK_RETRY_MS = 2_000;

const lazyPages: { prefetch: () => Promise<void> }[] = [];

/**
 * A page whose code loads when first opened. Not TanStack's lazyRouteComponent: that reloads
 * the document when the import fails, and with the platform away the reload replaces the app
 * with the browser's error page for good. Here a failed import is asked for again every 2 s
 * while the shell says the platform is unreachable; the page appears once it loads.
 */
function lazyPage<M extends Record<K, ComponentType>, K extends keyof M & string>(
  importer: () => Promise<M>,
  name: K,
): AsyncRouteComponent<object> {
  let page: ComponentType | undefined;
  let loading: Promise<void> | undefined;
  const take = (m: M) => {
    page = m[name];
  };
  const load = (): Promise<void> =>
    (loading ??= (async () => {
      for (let failed = false; ;) {
        try {
          take(await importer());
          if (failed) platformReachability.report(true);
          return;
        } catch {
          failed = true;
          platformReachability.report(false);
          await new Promise((r) => setTimeout(r, CHUNK_RETRY_MS));
        }
      }
    })());
  const Lazy = (props: object) => {
    if (!page) throw load();
    return createElement(page, props);
  };
  const component = Object.assign(Lazy, { preload: load });
  // In the background nobody waits: one try, quietly; opening the page tries again.
  lazyPages.push({
    prefetch: () => (page || loading ? Promise.resolve() : importer().then(take, () => undefined)),
  });
  return component;
}

/**
 * Loads every page's code in the background, one after another, so moving between pages
 * needs no network for code (and works while the platform is briefly away).
 */
export async function prefetchPages(): Promise<void> {
  for (const p of lazyPages) await p.prefetch();
}

// The landing page (Gateways) ships in the first bundle; the others load when opened.
const AccountPage = lazyPage(() => import('./pages/Account'), 'AccountPage');
const AccessTargetsPage = lazyPage(() => import('./pages/AccessTargets'), 'AccessTargetsPage');
const AuditLogPage = lazyPage(() => import('./pages/AuditLog'), 'AuditLogPage');
const EnrollmentTokensPage = lazyPage(
  () => import('./pages/EnrollmentTokens'),
  'EnrollmentTokensPage',
);
const GatewayDetailPage = lazyPage(() => import('./pages/GatewayDetail'), 'GatewayDetailPage');
const IdentitiesPage = lazyPage(() => import('./pages/Identities'), 'IdentitiesPage');
const IdentityPage = lazyPage(() => import('./pages/Identities'), 'IdentityPage');
const SettingsPage = lazyPage(() => import('./pages/Settings'), 'SettingsPage');

const str = (v: unknown) => (typeof v === 'string' && v ? v : undefined);

const routes = [
  createRoute({
    getParentRoute: () => rootRoute,
    path: '/',
    beforeLoad: () => {
      throw redirect({ to: '/gateways' });
    },
  }),
  createRoute({
    getParentRoute: () => rootRoute,
    path: '/gateways',
    component: GatewaysPage,
    validateSearch: (s: Record<string, unknown>): GatewaysSearch => ({
      view: s.view === 'pools' ? 'pools' : s.view === 'gateways' ? 'gateways' : undefined,
      pool: str(s.pool),
      resources: str(s.resources),
    }),
  }),
  createRoute({
    getParentRoute: () => rootRoute,
    path: '/gateways/$id',
    component: GatewayDetailPage,
  }),
  createRoute({
    getParentRoute: () => rootRoute,
    path: '/enrollment-tokens',
    component: EnrollmentTokensPage,
  }),
  createRoute({ getParentRoute: () => rootRoute, path: '/identities', component: IdentitiesPage }),
  createRoute({
    getParentRoute: () => rootRoute,
    path: '/identities/$id',
    component: IdentityPage,
  }),
  createRoute({ getParentRoute: () => rootRoute, path: '/settings', component: SettingsPage }),
  createRoute({
    getParentRoute: () => rootRoute,
    path: '/access-targets',
    component: AccessTargetsPage,
  }),
  createRoute({
    getParentRoute: () => rootRoute,
    path: '/audit',
    component: AuditLogPage,
    // The filters live in the URL: a reload, Back or a shared link keeps them.
    validateSearch: (s: Record<string, unknown>): AuditSearch => ({
      event: str(s.event),
      actor: str(s.actor),
      actorType: str(s.actorType),
      from: str(s.from),
      to: str(s.to),
    }),
  }),
  createRoute({ getParentRoute: () => rootRoute, path: '/account', component: AccountPage }),
];

export const router = createRouter({
  routeTree: rootRoute.addChildren(routes),
  defaultNotFoundComponent: NotFoundPage,
  // Shown while a page's code is still on its way (e.g. asked for again after a failure).
  defaultPendingComponent: () => <Loading what="page" />,
});

declare module '@tanstack/react-router' {
  interface Register {
    router: typeof router;
  }
}
