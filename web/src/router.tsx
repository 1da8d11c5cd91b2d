import {
  createRootRoute,
  createRoute,
  createRouter,
  lazyRouteComponent,
  redirect,
} from '@tanstack/react-router';
import { Root } from './components/Layout';
import { GatewaysPage, type GatewaysSearch } from './pages/Gateways';

const rootRoute = createRootRoute({ component: Root });

// The landing page (Gateways) ships in the first bundle; the others load when opened.
const AccessTargetsPage = lazyRouteComponent(
  () => import('./pages/AccessTargets'),
  'AccessTargetsPage',
);
const AuditLogPage = lazyRouteComponent(() => import('./pages/AuditLog'), 'AuditLogPage');
const EnrollmentTokensPage = lazyRouteComponent(
  () => import('./pages/EnrollmentTokens'),
  'EnrollmentTokensPage',
);
const GatewayDetailPage = lazyRouteComponent(
  () => import('./pages/GatewayDetail'),
  'GatewayDetailPage',
);
const IdentitiesPage = lazyRouteComponent(() => import('./pages/Identities'), 'IdentitiesPage');
const IdentityPage = lazyRouteComponent(() => import('./pages/Identities'), 'IdentityPage');
const SettingsPage = lazyRouteComponent(() => import('./pages/Settings'), 'SettingsPage');

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
  createRoute({ getParentRoute: () => rootRoute, path: '/audit', component: AuditLogPage }),
];

export const router = createRouter({
  routeTree: rootRoute.addChildren(routes),
  defaultNotFoundComponent: () => <p className="p-6">This page does not exist.</p>,
});

declare module '@tanstack/react-router' {
  interface Register {
    router: typeof router;
  }
}
