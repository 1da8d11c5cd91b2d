import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { api, unwrap } from '../api/client';
import type { Me } from '../api/types';
import { Button, ErrorText, Field, Form, Input } from '../components/ui';
import { announceSessionChange } from '../lib/tabs';
import { ChangePasswordForm } from '../components/ChangePasswordForm';

export function AuthFrame({ title, children }: { title: string; children: React.ReactNode }) {
  return (
    <main className="flex min-h-screen items-center justify-center p-4">
      <div className="w-full max-w-sm rounded-xl border border-slate-200 bg-white p-6 shadow">
        <p className="mb-1 text-sm font-semibold tracking-wide text-indigo-700">gatepool</p>
        <h1 className="mb-4 text-xl font-semibold">{title}</h1>
        {children}
      </div>
    </main>
  );
}

/**
 * `sessionEnded`: this tab was signed in until now (revoked, expired, signed out elsewhere);
 * `why`: the platform's own words for it, when it knows (removed from the organization, …).
 */
export function SignIn({ sessionEnded = false, why }: { sessionEnded?: boolean; why?: string }) {
  const qc = useQueryClient();
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const login = useMutation({
    mutationFn: () => unwrap(api.POST('/api/v1/auth/login', { body: { email, password } })),
    onSuccess: () => qc.resetQueries(),
  });
  return (
    <AuthFrame title="Sign in">
      {(sessionEnded || why) && (
        <p
          role="status"
          className="mb-4 rounded-md border border-amber-300 bg-amber-50 px-3 py-2 text-sm text-amber-950"
        >
          {why ?? 'Your session ended (signed out or expired): sign in again.'}
        </p>
      )}
      <Form onSubmit={() => login.mutateAsync()} className="flex flex-col gap-3">
        <Field label="Email">
          {(id) => (
            <Input
              id={id}
              // The one thing to do on this page.
              autoFocus
              type="email"
              autoComplete="username"
              required
              value={email}
              onChange={(e) => setEmail(e.target.value)}
            />
          )}
        </Field>
        <Field label="Password">
          {(id) => (
            <Input
              id={id}
              type="password"
              autoComplete="current-password"
              required
              value={password}
              onChange={(e) => setPassword(e.target.value)}
            />
          )}
        </Field>
        <ErrorText error={login.error} />
        <Button type="submit" tone="primary" disabled={login.isPending}>
          {login.isPending ? 'Signing in…' : 'Sign in'}
        </Button>
      </Form>
    </AuthFrame>
  );
}

/**
 * Shown instead of everything else to a person whose password the admin who invited them set:
 * until they choose their own the platform refuses every other request, and whoever set it
 * could go on signing in as them. Then the page they came for shows.
 */
export function ChoosePassword({ me }: { me: Me }) {
  const qc = useQueryClient();
  const logout = useMutation({
    mutationFn: () => unwrap(api.POST('/api/v1/auth/logout')),
    onSettled: () => {
      announceSessionChange();
      window.location.assign('/');
    },
  });
  return (
    <AuthFrame title="Choose your password">
      <p className="mb-4 text-sm text-slate-600">
        You are signed in as <strong className="[overflow-wrap:anywhere]">{me.name}</strong>. The
        password you signed in with was set by the admin who invited you: choose your own before
        going on (12 characters at least).
      </p>
      <ChangePasswordForm
        firstSignIn
        submitLabel="Save and continue"
        // Who we are is asked again: the platform now answers everything the role allows.
        onChanged={async () => {
          announceSessionChange();
          await qc.resetQueries();
        }}
        extra={
          <Button onClick={() => logout.mutate()} disabled={logout.isPending}>
            Sign out
          </Button>
        }
      />
    </AuthFrame>
  );
}

export function Setup() {
  const qc = useQueryClient();
  const [form, setForm] = useState({ organizationName: '', email: '', password: '' });
  const setup = useMutation({
    mutationFn: () => unwrap(api.POST('/api/v1/bootstrap', { body: form })),
    onSuccess: () => qc.resetQueries(),
  });
  const tooShort = form.password.length > 0 && form.password.length < 12;
  return (
    <AuthFrame title="Set up gatepool">
      <p className="mb-4 text-sm text-slate-600">
        No administrator exists yet. Create the first one and your organization.
      </p>
      <Form className="flex flex-col gap-3" onSubmit={() => setup.mutateAsync()}>
        <Field label="Organization name">
          {(id) => (
            <Input
              id={id}
              required
              maxLength={128}
              value={form.organizationName}
              onChange={(e) => setForm({ ...form, organizationName: e.target.value })}
            />
          )}
        </Field>
        <Field label="Email">
          {(id) => (
            <Input
              id={id}
              type="email"
              autoComplete="username"
              required
              value={form.email}
              onChange={(e) => setForm({ ...form, email: e.target.value })}
            />
          )}
        </Field>
        <Field
          label="Password"
          hint="At least 12 characters."
          error={tooShort ? 'The password is shorter than 12 characters.' : null}
        >
          {(id, describedBy) => (
            <Input
              id={id}
              type="password"
              autoComplete="new-password"
              required
              aria-describedby={describedBy}
              aria-invalid={tooShort}
              value={form.password}
              onChange={(e) => setForm({ ...form, password: e.target.value })}
            />
          )}
        </Field>
        <ErrorText error={setup.error} />
        <Button type="submit" tone="primary" disabled={setup.isPending || tooShort}>
          Create administrator
        </Button>
      </Form>
    </AuthFrame>
  );
}
