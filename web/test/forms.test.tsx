// @vitest-environment jsdom
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { cleanup, render, screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import type { ReactNode } from 'react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Button, Form } from '../src/components/ui';
import { PoolFormDialog } from '../src/pages/Gateways';
import { SignIn } from '../src/pages/SignIn';

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

function wrap(ui: ReactNode) {
  const qc = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  return render(<QueryClientProvider client={qc}>{ui}</QueryClientProvider>);
}

/** Records requests and answers each with the given status and JSON body. */
function answer(status: number, body: unknown) {
  const seen: Request[] = [];
  vi.stubGlobal(
    'fetch',
    vi.fn(async (req: Request) => {
      seen.push(req);
      return new Response(JSON.stringify(body), {
        status,
        headers: { 'content-type': 'application/json' },
      });
    }),
  );
  return seen;
}

describe('sign-in form', () => {
  it('has Email, Password and Sign in, sends the CSRF header, and shows the error in its own words', async () => {
    const seen = answer(401, {
      error: { code: 'unauthorized', message: 'Invalid email or password.' },
    });
    wrap(<SignIn />);
    const user = userEvent.setup();
    await user.type(screen.getByLabelText('Email'), 'a@example.com');
    await user.type(screen.getByLabelText('Password'), 'wrong-password-123');
    await user.click(screen.getByRole('button', { name: 'Sign in' }));
    expect((await screen.findByRole('alert')).textContent).toContain('Invalid email or password.');
    expect(seen).toHaveLength(1);
    expect(seen[0]!.method).toBe('POST');
    expect(new URL(seen[0]!.url).pathname).toBe('/api/v1/auth/login');
    expect(seen[0]!.headers.get('x-gatepool-request')).toBe('1');
    expect(await seen[0]!.json()).toEqual({
      email: 'a@example.com',
      password: 'wrong-password-123',
    });
  });

  it('says so when the platform cannot be reached', async () => {
    vi.stubGlobal(
      'fetch',
      vi.fn(async () => Promise.reject(new TypeError('fetch failed'))),
    );
    wrap(<SignIn />);
    const user = userEvent.setup();
    await user.type(screen.getByLabelText('Email'), 'a@example.com');
    await user.type(screen.getByLabelText('Password'), 'whatever-password');
    await user.click(screen.getByRole('button', { name: 'Sign in' }));
    expect((await screen.findByRole('alert')).textContent).toMatch(/could not be reached/);
  });
});

describe('pool form', () => {
  const existing = { id: 'p1', name: 'dc1', minHealthy: 1, healthCheckTarget: null };

  it('checks the slug rules and name uniqueness as you type, before submitting', async () => {
    const seen = answer(201, { ...existing, id: 'p2', name: 'dc2' });
    wrap(<PoolFormDialog open onOpenChange={() => undefined} pools={[existing]} />);
    const user = userEvent.setup();
    const name = screen.getByLabelText('Name');
    const submit = () => screen.getByRole('button', { name: 'Create pool' }) as HTMLButtonElement;
    await user.type(name, 'DC 2');
    expect(screen.getByText(/lowercase letters, digits and hyphens/)).toBeTruthy();
    expect(submit().disabled).toBe(true);
    await user.clear(name);
    await user.type(name, 'dc1');
    expect(screen.getByText('A pool named "dc1" already exists.')).toBeTruthy();
    expect(submit().disabled).toBe(true);
    await user.clear(name);
    await user.type(name, 'dc2');
    expect(submit().disabled).toBe(false);
    expect(seen).toHaveLength(0);
    await user.click(submit());
    await waitFor(() => expect(seen).toHaveLength(1));
    expect(await seen[0]!.json()).toEqual({ name: 'dc2', minHealthy: 1, healthCheckTarget: null });
  });

  it('shows the server refusal next to the form', async () => {
    answer(400, {
      error: {
        code: 'bad_request',
        message: 'healthCheckTarget must be host:port, e.g. "10.0.0.5:5432"',
      },
    });
    wrap(<PoolFormDialog open onOpenChange={() => undefined} pools={[]} />);
    const user = userEvent.setup();
    await user.type(screen.getByLabelText('Name'), 'dc3');
    await user.type(screen.getByLabelText('Health-check target'), 'nope');
    await user.click(screen.getByRole('button', { name: 'Create pool' }));
    expect((await screen.findByRole('alert')).textContent).toContain(
      'healthCheckTarget must be host:port',
    );
  });
});

describe('per-field refusals', () => {
  it('shows each field the platform refused next to that field, the rest at the top', async () => {
    answer(400, {
      error: {
        code: 'validation_failed',
        message: 'Invalid request: body.minHealthy: too big; body.labels: not allowed',
        details: {
          fields: [
            { field: 'body.minHealthy', message: 'minHealthy must be at most 100' },
            { field: 'body.labels', message: 'labels are not accepted here' },
          ],
        },
      },
    });
    wrap(<PoolFormDialog open onOpenChange={() => undefined} pools={[]} />);
    const user = userEvent.setup();
    await user.type(screen.getByLabelText('Name'), 'dc4');
    await user.click(screen.getByRole('button', { name: 'Create pool' }));
    await screen.findByText('minHealthy must be at most 100');
    const min = screen.getByLabelText('Min healthy');
    expect(min.getAttribute('aria-invalid')).toBe('true');
    const described = (min.getAttribute('aria-describedby') ?? '').split(' ');
    const own = screen.getByText('minHealthy must be at most 100');
    expect(described).toContain(own.id);
    // The field not on the form stays at the top, without the one shown next to its field.
    const alerts = screen.getAllByRole('alert').map((a) => a.textContent ?? '');
    const top = alerts.find((t) => t.includes('labels are not accepted here'));
    expect(top).toBeTruthy();
    expect(top).not.toContain('minHealthy');
    expect(screen.getByLabelText('Name').getAttribute('aria-invalid')).toBe('false');
    // Editing again clears the refusal.
    await user.type(min, '5');
    expect(screen.queryByText('minHealthy must be at most 100')).toBeNull();
    expect(min.getAttribute('aria-invalid')).toBe('false');
  });
});

describe('double submit', () => {
  it('a double-click on a create button sends one request, the button disabled meanwhile', async () => {
    let release: () => void = () => undefined;
    const seen: Request[] = [];
    vi.stubGlobal(
      'fetch',
      vi.fn(async (req: Request) => {
        seen.push(req);
        // Held until released: the second click lands while the first is in flight.
        await new Promise<void>((r) => (release = r));
        return new Response(JSON.stringify({ id: 'p9', name: 'dc9', warnings: [] }), {
          status: 201,
          headers: { 'content-type': 'application/json' },
        });
      }),
    );
    wrap(<PoolFormDialog open onOpenChange={() => undefined} pools={[]} />);
    const user = userEvent.setup();
    await user.type(screen.getByLabelText('Name'), 'dc9');
    const submit = screen.getByRole('button', { name: 'Create pool' }) as HTMLButtonElement;
    await user.dblClick(submit);
    await waitFor(() => expect(seen).toHaveLength(1));
    expect(submit.disabled).toBe(true);
    release();
    await waitFor(() => expect(submit.disabled).toBe(false));
    expect(seen).toHaveLength(1);
  });

  it('a form submitted twice (in the same tick, or just after the first answer) sends once', async () => {
    const calls: number[] = [];
    let release: () => void = () => undefined;
    render(
      <Form
        onSubmit={() => {
          calls.push(1);
          return new Promise<void>((r) => (release = r));
        }}
      >
        <Button type="submit">Send</Button>
      </Form>,
    );
    const form = screen.getByRole('button', { name: 'Send' }).closest('form')!;
    form.requestSubmit();
    form.requestSubmit();
    expect(calls).toHaveLength(1);
    release();
    await waitFor(() =>
      expect((screen.getByRole('button', { name: 'Send' }) as HTMLButtonElement).disabled).toBe(
        false,
      ),
    );
    // Right after, still the same double-click; a moment later, a new submit.
    form.requestSubmit();
    expect(calls).toHaveLength(1);
    await new Promise((r) => setTimeout(r, 600));
    form.requestSubmit();
    expect(calls).toHaveLength(2);
  });
});
