import { useMutation } from '@tanstack/react-query';
import { useState } from 'react';
import { api, unwrap } from '../api/client';
import { Button, Card, ErrorText, Field, Form, Input, splitFieldErrors } from '../components/ui';
import { useMe } from '../lib/session';

/** The signed-in person's own page: who they are, and changing their password. */
export function AccountPage() {
  const { data: me } = useMe();
  if (!me) return null;
  return (
    <div className="flex flex-col gap-4">
      <h1 className="text-2xl font-semibold">Your account</h1>
      <Card title="Signed in as">
        <dl className="grid grid-cols-[max-content_1fr] gap-x-4 gap-y-1 text-sm">
          <dt className="text-slate-600">Account</dt>
          <dd className="[overflow-wrap:anywhere]">{me.name}</dd>
          <dt className="text-slate-600">Organization</dt>
          <dd className="[overflow-wrap:anywhere]">{me.organization.name}</dd>
          <dt className="text-slate-600">Role</dt>
          <dd>{me.roleName}</dd>
        </dl>
      </Card>
      {me.type === 'user' ? (
        <ChangePassword />
      ) : (
        <Card title="Password">
          <p className="text-sm text-slate-600">A machine identity has no password.</p>
        </Card>
      )}
    </div>
  );
}

function ChangePassword() {
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [again, setAgain] = useState('');
  const [done, setDone] = useState<number | null>(null);
  const change = useMutation({
    mutationFn: () =>
      unwrap<{ otherSessionsEnded: number }>(
        api.POST('/api/v1/auth/password', {
          body: { currentPassword: current, newPassword: next },
        }),
      ),
    onSuccess: (r) => {
      setDone(r.otherSessionsEnded);
      setCurrent('');
      setNext('');
      setAgain('');
    },
  });
  const refused = splitFieldErrors(change.error, ['currentPassword', 'newPassword']);
  // The platform's rules, checked as the user types (it checks again).
  const tooShort = next.length > 0 && next.length < 12;
  const mismatch = again.length > 0 && again !== next;
  return (
    <Card title="Change password">
      <Form
        className="flex max-w-md flex-col gap-3"
        aria-label="Change password"
        onSubmit={() => {
          setDone(null);
          return change.mutateAsync();
        }}
        // Editing again makes the last refusal stale.
        onChange={() => change.reset()}
      >
        {/* Lets password managers tie the new password to this account. */}
        <input type="hidden" autoComplete="username" value="" readOnly />
        <Field label="Current password" error={refused.of('currentPassword')}>
          {(id, d, invalid) => (
            <Input
              id={id}
              type="password"
              required
              autoComplete="current-password"
              aria-describedby={d}
              aria-invalid={invalid}
              value={current}
              onChange={(e) => setCurrent(e.target.value)}
            />
          )}
        </Field>
        <Field
          label="New password"
          hint="At least 12 characters."
          error={
            tooShort ? 'The password is shorter than 12 characters.' : refused.of('newPassword')
          }
        >
          {(id, d, invalid) => (
            <Input
              id={id}
              type="password"
              required
              minLength={12}
              maxLength={256}
              autoComplete="new-password"
              aria-describedby={d}
              aria-invalid={invalid}
              value={next}
              onChange={(e) => setNext(e.target.value)}
            />
          )}
        </Field>
        <Field
          label="New password again"
          error={mismatch ? 'This is not the same as the new password.' : null}
        >
          {(id, d, invalid) => (
            <Input
              id={id}
              type="password"
              required
              autoComplete="new-password"
              aria-describedby={d}
              aria-invalid={invalid}
              value={again}
              onChange={(e) => setAgain(e.target.value)}
            />
          )}
        </Field>
        <ErrorText error={refused.rest} />
        {done !== null && (
          <p
            role="status"
            className="rounded-md border border-green-300 bg-green-50 px-3 py-2 text-sm text-green-900"
          >
            Password changed.{' '}
            {done === 0
              ? 'You had no other sessions.'
              : `${done} other session${done === 1 ? ' was' : 's were'} signed out; this one stays.`}
          </p>
        )}
        <div>
          <Button
            type="submit"
            tone="primary"
            disabled={!current || !next || tooShort || again !== next}
          >
            Change password
          </Button>
        </div>
      </Form>
    </Card>
  );
}
