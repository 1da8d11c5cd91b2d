import { useMutation } from '@tanstack/react-query';
import { useState, type ReactNode } from 'react';
import { api, unwrap } from '../api/client';
import { Button, ErrorText, Field, Form, Input, splitFieldErrors } from './ui';

/**
 * Current password, then the new one twice, with the platform's rules checked as the user
 * types. Also the whole of the "Choose your password" page a person whose password the
 * inviting admin set sees first (`firstSignIn`: the first field takes focus, and success is
 * handed to `onChanged` instead of shown here).
 */
export function ChangePasswordForm({
  firstSignIn = false,
  onChanged,
  submitLabel = 'Change password',
  extra,
}: {
  firstSignIn?: boolean;
  onChanged?: () => unknown;
  submitLabel?: string;
  /** Next to the submit button (the first-sign-in page's sign out). */
  extra?: ReactNode;
}) {
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
    onSuccess: async (r) => {
      if (onChanged) return onChanged();
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
    <Form
      className="flex max-w-md flex-col gap-3"
      aria-label={firstSignIn ? 'Choose your password' : 'Change password'}
      onSubmit={() => {
        setDone(null);
        return change.mutateAsync();
      }}
      // Editing again makes the last refusal stale.
      onChange={() => change.reset()}
    >
      {/* Lets password managers tie the new password to this account. */}
      <input type="hidden" autoComplete="username" value="" readOnly />
      <Field
        label={firstSignIn ? 'Current password (the one the admin gave you)' : 'Current password'}
        error={refused.of('currentPassword')}
      >
        {(id, d, invalid) => (
          <Input
            id={id}
            // On the first-sign-in page this form is the one thing to do.
            autoFocus={firstSignIn}
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
        error={tooShort ? 'The password is shorter than 12 characters.' : refused.of('newPassword')}
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
      <div className="flex flex-wrap items-center gap-2">
        <Button
          type="submit"
          tone="primary"
          disabled={!current || !next || tooShort || again !== next}
        >
          {submitLabel}
        </Button>
        {extra}
      </div>
    </Form>
  );
}
