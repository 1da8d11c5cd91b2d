import { ChangePasswordForm } from '../components/ChangePasswordForm';
import { Card } from '../components/ui';
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
        <Card title="Change password">
          <ChangePasswordForm />
        </Card>
      ) : (
        <Card title="Password">
          <p className="text-sm text-slate-600">A machine identity has no password.</p>
        </Card>
      )}
    </div>
  );
}
