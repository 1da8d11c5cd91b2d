// @vitest-environment jsdom
import { QueryClientProvider, useQuery } from '@tanstack/react-query';
import {
  createMemoryHistory,
  createRootRoute,
  createRoute,
  createRouter,
  RouterProvider,
} from '@tanstack/react-router';
import { cleanup, render, screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { api, platformReachability, unwrap } from '../src/api/client';
import { Root } from '../src/components/Layout';
import { makeQueryClient } from '../src/lib/queryClient';

// The router restores scroll positions; jsdom has no layout to scroll.
window.scrollTo = (() => undefined) as typeof window.scrollTo;

afterEach(() => {
  cleanup();
  platformReachability.reset();
  vi.unstubAllGlobals();
});

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

/** A platform that, like the real one, answers nothing but /me and the change until it is made. */
function platform() {
  const state = { mustChange: true, calls: [] as string[], sent: undefined as unknown };
  vi.stubGlobal(
    'fetch',
    vi.fn(async (req: Request) => {
      const path = new URL(req.url).pathname;
      state.calls.push(`${req.method} ${path}`);
      if (path === '/api/v1/bootstrap') return json(200, { bootstrapped: true });
      if (path === '/api/v1/me')
        return json(200, {
          type: 'user',
          id: 'u1',
          name: 'new@acme.example',
          organization: { id: 'o-acme', name: 'Acme' },
          role: 'viewer',
          roleName: 'Viewer',
          permissions: [{ subject: 'Gateway', action: 'read' }],
          organizations: [{ id: 'o-acme', name: 'Acme', role: 'viewer' }],
          pendingInvitations: [],
          passwordChangeRequired: state.mustChange,
        });
      if (path === '/api/v1/auth/password') {
        state.sent = await req.json();
        state.mustChange = false;
        return json(200, { otherSessionsEnded: 0 });
      }
      if (state.mustChange)
        return json(403, {
          error: { code: 'password_change_required', message: 'Choose your own password first.' },
        });
      if (path === '/api/v1/license') return json(200, { features: { gatewayPool: true } });
      if (path === '/api/v1/gateways')
        return json(200, { items: [{ name: 'gw' }], nextCursor: null });
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

describe('a password the inviting admin chose', () => {
  it('is replaced on a page of its own first; then the page asked for shows', async () => {
    const p = platform();
    const root = createRootRoute({ component: Root });
    const router = createRouter({
      routeTree: root.addChildren([
        createRoute({ getParentRoute: () => root, path: '/gateways', component: GatewayList }),
      ]),
      history: createMemoryHistory({ initialEntries: ['/gateways'] }),
    });
    render(
      <QueryClientProvider client={makeQueryClient()}>
        <RouterProvider router={router} />
      </QueryClientProvider>,
    );
    await screen.findByRole('heading', { name: 'Choose your password' });
    const current = screen.getByLabelText('Current password (the one the admin gave you)');
    await waitFor(() => expect(document.activeElement).toBe(current));
    // Nothing else is shown or asked for: the platform would refuse it.
    expect(screen.queryByRole('navigation', { name: 'Main' })).toBeNull();
    expect(screen.queryByText(/^List:/)).toBeNull();
    expect(p.calls.filter((c) => !/\/api\/v1\/(me|bootstrap)$/.test(c))).toEqual([]);
    expect(document.title).toBe('Choose your password · gatepool');

    const user = userEvent.setup();
    await user.type(current, 'admin-chose-this');
    await user.type(screen.getByLabelText('New password'), 'my-own-password');
    await user.type(screen.getByLabelText('New password again'), 'my-own-passwor');
    expect(screen.getByText('This is not the same as the new password.')).toBeTruthy();
    const save = screen.getByRole('button', { name: 'Save and continue' });
    expect((save as HTMLButtonElement).disabled).toBe(true);
    await user.type(screen.getByLabelText('New password again'), 'd');
    await user.click(save);

    await screen.findByText('List: gw');
    expect(p.sent).toEqual({ currentPassword: 'admin-chose-this', newPassword: 'my-own-password' });
    expect(screen.getByRole('navigation', { name: 'Main' })).toBeTruthy();
  });
});
