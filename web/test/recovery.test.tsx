// @vitest-environment jsdom
import { QueryClientProvider, useQuery, type QueryClient } from '@tanstack/react-query';
import {
  createMemoryHistory,
  createRootRoute,
  createRoute,
  createRouter,
  RouterProvider,
} from '@tanstack/react-router';
import { act, cleanup, render, screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { api, platformReachability, unwrap } from '../src/api/client';
import { Root } from '../src/components/Layout';
import { makeQueryClient } from '../src/lib/queryClient';

const ME = {
  type: 'user',
  id: 'u1',
  name: 'Ada',
  organization: { id: 'o-acme', name: 'Acme' },
  role: 'owner',
  roleName: 'Owner',
  permissions: [{ subject: 'Gateway', action: 'read' }],
  organizations: [
    { id: 'o-acme', name: 'Acme', role: 'owner' },
    { id: 'o-beta', name: 'Beta', role: 'owner' },
  ],
  pendingInvitations: [],
};

// The router restores scroll positions; jsdom has no layout to scroll.
window.scrollTo = (() => undefined) as typeof window.scrollTo;

let qc: QueryClient | undefined;
afterEach(() => {
  cleanup();
  qc?.clear();
  platformReachability.reset();
  vi.unstubAllGlobals();
});

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

/** A platform that can go away (network error or 503) and come back, and sessions that end. */
function platform() {
  const state = {
    down: null as null | 'network' | '503',
    signedOut: false,
    org: 'Acme',
    calls: [] as string[],
  };
  vi.stubGlobal(
    'fetch',
    vi.fn(async (req: Request) => {
      const path = new URL(req.url).pathname;
      state.calls.push(`${req.method} ${path}`);
      if (state.down === 'network') throw new TypeError('Failed to fetch');
      if (state.down === '503')
        return json(503, {
          error: { code: 'database_unavailable', message: 'The database is not reachable.' },
        });
      if (path === '/api/v1/bootstrap') return json(200, { bootstrapped: true });
      if (state.signedOut)
        return json(401, { error: { code: 'unauthorized', message: 'Sign in.' } });
      if (path === '/api/v1/me')
        return json(200, {
          ...ME,
          organization: ME.organizations.find((o) => o.name === state.org),
        });
      if (path === '/api/v1/license') return json(200, { features: { gatewayPool: true } });
      if (path === '/api/v1/auth/switch-organization') {
        state.org = 'Beta';
        return json(200, {});
      }
      if (path === '/api/v1/gateways')
        return json(200, { items: [{ id: 'g1', name: `${state.org}-gw` }], nextCursor: null });
      if (path.startsWith('/api/v1/gateways/'))
        return state.org === 'Acme'
          ? json(200, { id: 'g1', name: 'Acme-gw' })
          : json(404, { error: { code: 'not_found', message: 'Gateway g1 not found.' } });
      return json(404, { error: { code: 'not_found', message: `No ${path}` } });
    }),
  );
  return state;
}

function GatewayList() {
  const q = useQuery({
    queryKey: ['gateways'],
    queryFn: () => unwrap<{ items: { name: string }[] }>(api.GET('/api/v1/gateways')),
  });
  return <p>List: {q.data?.items.map((g) => g.name).join(', ')}</p>;
}
function GatewayOne() {
  const q = useQuery({
    queryKey: ['gateway', 'g1'],
    queryFn: () =>
      unwrap<{ name: string }>(
        api.GET('/api/v1/gateways/{id}', { params: { path: { id: 'g1' } } }),
      ),
  });
  return <p>{q.error ? `Error: ${q.error.message}` : `Detail: ${q.data?.name ?? ''}`}</p>;
}

function app(at: string) {
  const root = createRootRoute({ component: Root });
  const router = createRouter({
    routeTree: root.addChildren([
      createRoute({ getParentRoute: () => root, path: '/gateways', component: GatewayList }),
      createRoute({ getParentRoute: () => root, path: '/gateways/$id', component: GatewayOne }),
    ]),
    history: createMemoryHistory({ initialEntries: [at] }),
  });
  qc = makeQueryClient();
  render(
    <QueryClientProvider client={qc}>
      <RouterProvider router={router} />
    </QueryClientProvider>,
  );
  return { router, qc };
}

const banner = () => screen.queryByText(/The platform is unreachable — retrying every 5 s/);

describe('the app while the platform restarts', () => {
  it('keeps the page with a banner when the platform goes away, and recovers by itself', async () => {
    const p = platform();
    const { qc } = app('/gateways');
    await screen.findByText('List: Acme-gw');
    p.down = 'network';
    // What the event stream's drop does: ask who we are (and the page polls its data).
    await act(async () => {
      void qc.invalidateQueries();
    });
    await waitFor(() => expect(banner()).not.toBeNull());
    expect(screen.getByText('List: Acme-gw')).toBeTruthy();
    expect(screen.getByRole('navigation', { name: 'Main' })).toBeTruthy();
    expect(screen.queryByRole('alert')).toBeNull();
    const t0 = Date.now();
    p.down = null;
    p.calls.length = 0;
    await waitFor(() => expect(banner()).toBeNull(), { timeout: 7000 });
    const recoveredMs = Date.now() - t0;
    expect(recoveredMs).toBeLessThan(6000);
    // Back: everything shown is asked for again.
    await waitFor(() => expect(p.calls).toContain('GET /api/v1/gateways'));
    expect(screen.getByText('List: Acme-gw')).toBeTruthy();
    expect(screen.queryByRole('alert')).toBeNull();
  }, 15_000);

  it('a 503 (database restarting) shows the banner too and keeps the page', async () => {
    const p = platform();
    const { qc } = app('/gateways');
    await screen.findByText('List: Acme-gw');
    p.down = '503';
    await act(async () => {
      void qc.invalidateQueries();
    });
    await waitFor(() => expect(banner()).not.toBeNull());
    expect(screen.getByText('List: Acme-gw')).toBeTruthy();
    expect(screen.queryByRole('alert')).toBeNull();
  });

  it('a 401 still goes to sign-in', async () => {
    const p = platform();
    const { qc } = app('/gateways');
    await screen.findByText('List: Acme-gw');
    p.signedOut = true;
    await act(async () => {
      void qc.invalidateQueries({ queryKey: ['me'] });
    });
    await screen.findByLabelText('Email');
    expect(banner()).toBeNull();
  });
});

describe('switching organization', () => {
  it("on a detail page goes to the section's list of the new organization, no error", async () => {
    const p = platform();
    const { router } = app('/gateways/g1');
    await screen.findByText('Detail: Acme-gw');
    await userEvent.setup().selectOptions(screen.getByLabelText('Organization'), 'o-beta');
    await screen.findByText('List: Beta-gw');
    expect(router.state.location.pathname).toBe('/gateways');
    expect(p.calls).toContain('POST /api/v1/auth/switch-organization');
    // The old organization's gateway was not asked for again.
    expect(p.calls.filter((c) => c === 'GET /api/v1/gateways/g1')).toHaveLength(1);
    expect(screen.queryByText(/not found/)).toBeNull();
  });
});
