import * as Switch from '@radix-ui/react-switch';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useId, useState } from 'react';
import { api, unwrap } from '../api/client';
import type { Invitation, InvitedUser, Member, Page, Role, RolesAnswer } from '../api/types';
import { ConfirmButton, FormDialog } from '../components/Dialogs';
import { NoAccessNote } from '../components/PageGate';
import { RoleChange, rolePermissionsHeld } from '../components/RoleChange';
import {
  Button,
  Card,
  CopyButton,
  ErrorText,
  Field,
  fieldIssues,
  Form,
  Input,
  Loading,
  Permitted,
  splitFieldErrors,
  TableHead,
  TableScroll,
  TextArea,
} from '../components/ui';
import { allPages, LIST_REFRESH_MS } from '../lib/queries';
import { warningNotices } from '../lib/notices';
import { hasPools, permission, useLicense, useMe } from '../lib/session';
import { useRoles } from './Identities';
import {
  LIMITABLE,
  limitOf,
  limitsDiffer,
  limitText,
  parseTargets,
  targetsProblem,
} from './roleTargets';

export function SettingsPage() {
  return (
    <div className="flex flex-col gap-4">
      <h1 className="text-2xl font-semibold">Organization</h1>
      <PlanCard />
      <PolicyCard />
      <MembersCard />
      <RolesCard />
    </div>
  );
}

function PlanCard() {
  const qc = useQueryClient();
  const { data: me } = useMe();
  const license = useLicense();
  const [key, setKey] = useState('');
  const install = useMutation({
    mutationFn: () => unwrap(api.PUT('/api/v1/license', { body: { key } })),
    onSuccess: () => {
      setKey('');
      void qc.invalidateQueries();
    },
  });
  const can = permission(me, 'edit', 'License');
  const refused = splitFieldErrors(install.error, ['key']);
  return (
    <Card title="Plan and license">
      {me && (
        <dl className="mb-1 grid grid-cols-[10rem_1fr] gap-y-1 text-sm">
          <dt className="text-slate-600">Organization ID</dt>
          <dd className="flex flex-wrap items-center gap-2">
            <code
              data-testid="org-id"
              className="rounded bg-slate-100 px-1.5 py-0.5 font-mono text-xs [overflow-wrap:anywhere]"
            >
              {me.organization.id}
            </code>
            <CopyButton text={me.organization.id} label="Copy ID" />
            <span className="w-full text-xs text-slate-600">
              Licenses are issued for it:{' '}
              <code>gatepool license issue --org {me.organization.id}</code>
            </span>
          </dd>
        </dl>
      )}
      {!permission(me, 'read', 'License').allowed ? (
        <NoAccessNote
          reason={`The plan is unknown here: ${permission(me, 'read', 'License').reason}`}
        />
      ) : license.isPending ? (
        <Loading what="plan" />
      ) : license.error ? (
        <ErrorText error={license.error} />
      ) : (
        <dl className="mb-3 grid grid-cols-[10rem_1fr] gap-y-1 text-sm">
          <dt className="text-slate-600">Plan</dt>
          <dd className="font-semibold capitalize" data-testid="plan">
            {license.data.plan}
          </dd>
          <dt className="text-slate-600">Expires</dt>
          <dd>
            {license.data.expiresAt ? new Date(license.data.expiresAt).toLocaleDateString() : '—'}
          </dd>
          {license.data.problem && (
            <>
              <dt className="text-slate-600">License refused</dt>
              <dd className="text-red-800">{license.data.problem}</dd>
            </>
          )}
        </dl>
      )}
      <Permitted check={can}>
        <Form
          id="license-key"
          className="flex flex-col gap-2"
          onSubmit={() => install.mutateAsync()}
          onChange={() => install.reset()}
        >
          <Field label="License key" error={refused.of('key')}>
            {(id, d, invalid) => (
              <TextArea
                id={id}
                rows={3}
                aria-describedby={d}
                aria-invalid={invalid}
                value={key}
                onChange={(e) => setKey(e.target.value)}
              />
            )}
          </Field>
          <ErrorText error={refused.rest} />
          <div>
            <Button type="submit" tone="primary" disabled={!key.trim() || install.isPending}>
              Install license
            </Button>
          </div>
        </Form>
      </Permitted>
    </Card>
  );
}

function PolicyCard() {
  const qc = useQueryClient();
  const { data: me } = useMe();
  const org = useQuery({
    queryKey: ['organization'],
    queryFn: () =>
      unwrap<{ name: string; requireGatewayPools: boolean }>(api.GET('/api/v1/organization')),
  });
  const save = useMutation({
    mutationFn: (requireGatewayPools: boolean) =>
      unwrap<{ warnings?: string[] }>(
        api.PATCH('/api/v1/organization', { body: { requireGatewayPools } }),
      ),
    // Consumers already pinned to one gateway keep it: the platform names them.
    onSuccess: (saved) => warningNotices.add(saved.warnings),
    onSettled: () => qc.invalidateQueries({ queryKey: ['organization'] }),
  });
  const can = permission(me, 'edit', 'Settings');
  const license = useLicense();
  // Requiring pools without having them would leave nothing to attach; turning it off stays
  // possible (a plan that lapsed must not lock the setting on).
  const noPools = !license.isPending && !hasPools(license);
  return (
    <Card title="Policy">
      {org.isPending ? (
        <Loading what="policy" />
      ) : org.error ? (
        <ErrorText error={org.error} />
      ) : (
        <div className="flex items-center gap-3 text-sm">
          <Switch.Root
            id="require-pools"
            checked={org.data.requireGatewayPools}
            disabled={!can.allowed || save.isPending || (noPools && !org.data.requireGatewayPools)}
            aria-describedby={noPools ? 'require-pools-plan' : undefined}
            title={can.allowed ? undefined : can.reason}
            onCheckedChange={(v) => save.mutate(v)}
            className="relative h-6 w-11 rounded-full bg-slate-300 focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-600 disabled:opacity-50 data-[state=checked]:bg-indigo-700"
          >
            <Switch.Thumb className="block h-5 w-5 translate-x-0.5 rounded-full bg-white shadow transition-transform data-[state=checked]:translate-x-[22px]" />
          </Switch.Root>
          <label htmlFor="require-pools">
            Require gateway pools (consumers may not newly attach an individual gateway)
          </label>
          {!can.allowed && <span className="text-xs text-slate-600">{can.reason}</span>}
        </div>
      )}
      {noPools && (
        <p id="require-pools-plan" className="mt-2 text-sm text-slate-700">
          Gateway pools are part of the Enterprise plan: without them nothing could be attached.{' '}
          {permission(me, 'edit', 'License').allowed ? (
            <>
              <a href="#license-key" className="font-medium text-indigo-800 underline">
                Install a license key
              </a>{' '}
              to require pools.
            </>
          ) : (
            'Installing a license key enables them.'
          )}
        </p>
      )}
      <ErrorText error={save.error} />
    </Card>
  );
}

function useMembers(enabled: boolean) {
  return useQuery({
    queryKey: ['members'],
    queryFn: () =>
      allPages((cursor) =>
        unwrap<Page<Member>>(
          api.GET('/api/v1/users', { params: { query: { cursor, limit: 200 } } }),
        ),
      ),
    enabled,
    // Someone who accepted an invitation elsewhere shows up without a reload.
    refetchInterval: LIST_REFRESH_MS,
    refetchOnWindowFocus: true,
  });
}

function MembersCard() {
  const qc = useQueryClient();
  const { data: me } = useMe();
  const roles = useRoles();
  const members = useMembers(true);
  const invitations = useQuery({
    queryKey: ['invitations'],
    queryFn: () =>
      allPages((cursor) =>
        unwrap<Page<Invitation>>(
          api.GET('/api/v1/invitations', { params: { query: { cursor, limit: 200 } } }),
        ),
      ),
  });
  const [form, setForm] = useState({ email: '', password: '', role: 'viewer' });
  const [invited, setInvited] = useState<InvitedUser | null>(null);
  const add = useMutation({
    mutationFn: () => unwrap<InvitedUser>(api.POST('/api/v1/users', { body: form })),
    onSuccess: (made) => {
      setInvited(made);
      setForm({ email: '', password: '', role: form.role });
      void qc.invalidateQueries({ queryKey: ['invitations'] });
    },
  });
  const revokeInvitation = useMutation({
    mutationFn: (id: string) =>
      unwrap(api.DELETE('/api/v1/invitations/{id}', { params: { path: { id } } })),
    onSettled: () => qc.invalidateQueries({ queryKey: ['invitations'] }),
  });
  const setRole = useMutation({
    mutationFn: (v: { id: string; role: string }) =>
      unwrap(
        api.PATCH('/api/v1/users/{id}', { params: { path: { id: v.id } }, body: { role: v.role } }),
      ),
    onSettled: () => qc.invalidateQueries({ queryKey: ['members'] }),
  });
  const remove = useMutation({
    mutationFn: (id: string) =>
      unwrap(api.DELETE('/api/v1/users/{id}', { params: { path: { id } } })),
    onSettled: () => qc.invalidateQueries({ queryKey: ['members'] }),
  });
  const refused = splitFieldErrors(add.error, ['email', 'password', 'role']);
  const canCreate = permission(me, 'create', 'Member');
  const canEdit = permission(me, 'edit', 'Member');
  const canDelete = permission(me, 'delete', 'Member');
  const read = permission(me, 'read', 'Member');
  if (me && !read.allowed)
    return (
      <Card title="Members">
        <NoAccessNote reason={read.reason} />
      </Card>
    );
  return (
    <Card title="Members">
      {members.isPending ? (
        <Loading what="members" />
      ) : members.error ? (
        <ErrorText error={members.error} />
      ) : (
        <TableScroll>
          <table className="mb-3 w-full text-left text-sm">
            <thead className="text-xs text-slate-700 uppercase">
              <tr>
                <th scope="col" className="py-1">
                  Email
                </th>
                <th scope="col" className="py-1">
                  Role
                </th>
                <th scope="col" className="py-1">
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {members.data.items.map((m) => (
                <tr key={m.id} className="border-t border-slate-100">
                  <td className="py-1.5">{m.email}</td>
                  <td className="py-1.5">
                    <RoleChange
                      who={m.email}
                      current={m.role}
                      self={m.id === me?.id}
                      roles={roles.data?.items ?? []}
                      canEdit={canEdit}
                      onSave={(role) => setRole.mutateAsync({ id: m.id, role })}
                    />
                  </td>
                  <td className="py-1.5 text-right">
                    <ConfirmButton
                      label="Remove"
                      confirmLabel="Remove"
                      title={`Remove ${m.email}?`}
                      body="They lose access to this organization at once."
                      disabledReason={canDelete.allowed ? undefined : canDelete.reason}
                      onConfirm={() => remove.mutateAsync(m.id)}
                    />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableScroll>
      )}
      {!!invitations.data?.items.length && (
        <TableScroll>
          <table className="mb-3 w-full text-left text-sm">
            <caption className="mb-1 text-left text-sm font-semibold">Pending invitations</caption>
            <thead className="text-xs text-slate-700 uppercase">
              <tr>
                <th scope="col" className="py-1">
                  Email
                </th>
                <th scope="col" className="py-1">
                  Role
                </th>
                <th scope="col" className="py-1">
                  Expires
                </th>
                <th scope="col" className="py-1">
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {invitations.data.items.map((i) => (
                <tr key={i.id} className="border-t border-slate-100" data-invitation={i.email}>
                  <td className="py-1.5">{i.email}</td>
                  <td className="py-1.5">
                    {roles.data?.items.find((r) => r.slug === i.role)?.name ?? i.role}
                  </td>
                  <td className="py-1.5">{new Date(i.expiresAt).toLocaleDateString()}</td>
                  <td className="py-1.5 text-right">
                    <ConfirmButton
                      label="Revoke"
                      confirmLabel="Revoke"
                      title={`Revoke the invitation of ${i.email}?`}
                      body="They will not join unless invited again."
                      disabledReason={canCreate.allowed ? undefined : canCreate.reason}
                      onConfirm={() => revokeInvitation.mutateAsync(i.id)}
                    />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableScroll>
      )}
      {/* The same refusal as the members' list says nothing new. */}
      {!members.error && <ErrorText error={invitations.error} />}
      <Permitted check={canCreate}>
        <Form
          className="flex flex-wrap items-start gap-2"
          onSubmit={() => add.mutateAsync()}
          // Editing again makes the last refusal stale.
          onChange={() => add.reset()}
        >
          <Field label="Invite by email" error={refused.of('email')}>
            {(id, d, invalid) => (
              <Input
                id={id}
                aria-describedby={d}
                aria-invalid={invalid}
                type="email"
                required
                value={form.email}
                onChange={(e) => setForm({ ...form, email: e.target.value })}
              />
            )}
          </Field>
          <Field
            label="Initial password"
            hint="Used only if the email has no account yet; signing in accepts."
            error={refused.of('password')}
          >
            {(id, d, invalid) => (
              <Input
                id={id}
                aria-describedby={d}
                aria-invalid={invalid}
                type="password"
                autoComplete="new-password"
                required
                value={form.password}
                onChange={(e) => setForm({ ...form, password: e.target.value })}
              />
            )}
          </Field>
          <Field label="Member role" error={refused.of('role')}>
            {(id, d, invalid) => (
              <select
                id={id}
                aria-describedby={d}
                aria-invalid={invalid}
                className="rounded-md border border-slate-400 bg-white px-2 py-1.5 text-sm"
                value={form.role}
                onChange={(e) => setForm({ ...form, role: e.target.value })}
              >
                {(roles.data?.items ?? []).map((r) => {
                  const held = rolePermissionsHeld(me, r);
                  return (
                    <option key={r.slug} value={r.slug} disabled={!held}>
                      {held ? r.name : `${r.name} (has permissions you don't hold)`}
                    </option>
                  );
                })}
              </select>
            )}
          </Field>
          <div className="pt-6">
            <Button type="submit" tone="primary" disabled={add.isPending}>
              Invite member
            </Button>
          </div>
          <div className="w-full">
            <ErrorText error={refused.rest} />
          </div>
        </Form>
        {invited && (
          <div
            role="status"
            className="mt-3 flex flex-wrap items-center gap-2 rounded-md border border-green-300 bg-green-50 p-3 text-sm"
          >
            <span>
              Invited {invited.email}. Give them the password and this code, shown only once (a new
              account joins at its first sign-in; an existing one accepts with the code):
            </span>
            <code className="rounded bg-white px-2 py-0.5" data-testid="accept-code">
              {invited.acceptCode}
            </code>
            <CopyButton text={invited.acceptCode} label="Copy code" />
          </div>
        )}
      </Permitted>
    </Card>
  );
}

const ROLE_SLUG = /^(?=.{1,64}$)[a-z0-9]+(-[a-z0-9]+)*$/;

type Vocabulary = RolesAnswer['vocabulary'];
const grantKey = (p: { subject: string; action: string }) => `${p.subject}:${p.action}`;

function RolesCard() {
  const { data: me } = useMe();
  const roles = useQuery({
    queryKey: ['roles'],
    queryFn: () => unwrap<RolesAnswer>(api.GET('/api/v1/roles')),
  });
  const [open, setOpen] = useState<string | null>(null);
  const can = permission(me, 'create', 'Role');
  const canEdit = permission(me, 'edit', 'Role');
  const canDelete = permission(me, 'delete', 'Role');
  const members = useMembers(permission(me, 'read', 'Member').allowed);
  const read = permission(me, 'read', 'Role');
  if (me && !read.allowed)
    return (
      <Card title="Roles">
        <NoAccessNote reason={read.reason} />
      </Card>
    );
  if (roles.isPending) return <Loading what="roles" />;
  if (roles.error)
    return (
      <Card title="Roles">
        <ErrorText error={roles.error} />
      </Card>
    );
  const vocab = roles.data.vocabulary ?? {};
  const shown = roles.data.items.find((r) => r.slug === open);
  // Who holds each role, as the members list already says: a held role's Delete says so up
  // front. (Identities may hold one too: the platform's refusal names them.)
  const holders = (slug: string) =>
    (members.data?.items ?? []).filter((m) => m.role === slug).map((m) => m.email);
  return (
    <Card title="Roles">
      <TableScroll>
        <table className="mb-3 w-full text-left text-sm">
          <caption className="sr-only">Roles of this organization</caption>
          <TableHead columns={['Role', 'Kind', 'Permissions', '']} cell="py-1 pr-2" />
          <tbody>
            {roles.data.items.map((r) => (
              <tr key={r.slug} className="border-t border-slate-100" data-role={r.slug}>
                <td className="py-1.5 pr-2 [overflow-wrap:anywhere]">
                  <span className="font-medium">{r.name}</span>
                  {r.name !== r.slug && (
                    <span className="ml-1 font-mono text-xs text-slate-600">{r.slug}</span>
                  )}
                  {r.description && <p className="text-xs text-slate-600">{r.description}</p>}
                </td>
                <td className="py-1.5 pr-2">{r.builtIn ? 'Built-in' : 'Custom'}</td>
                <td className="py-1.5 pr-2">
                  <span className="whitespace-nowrap">
                    {r.permissions.length}{' '}
                    {r.permissions.length === 1 ? 'permission' : 'permissions'}
                  </span>
                  {limitText(r) && (
                    <p className="text-xs text-slate-600 [overflow-wrap:anywhere]">
                      Access targets: {limitText(r)}
                    </p>
                  )}
                </td>
                <td className="py-1.5">
                  <div className="flex justify-end gap-1">
                    <Button small onClick={() => setOpen(r.slug)}>
                      {r.builtIn || !canEdit.allowed ? 'View' : 'Edit'}
                      <span className="sr-only"> role {r.name}</span>
                    </Button>
                    {!r.builtIn && (
                      <DeleteRoleButton
                        role={r}
                        disabledReason={
                          canDelete.reason ||
                          (holders(r.slug).length
                            ? `Held by ${holders(r.slug).slice(0, 3).join(', ')}${holders(r.slug).length > 3 ? ` and ${holders(r.slug).length - 3} more` : ''}: give them another role first.`
                            : '')
                        }
                      />
                    )}
                  </div>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </TableScroll>
      <FormDialog
        open={!!shown}
        onOpenChange={(o) => !o && setOpen(null)}
        title={
          !shown
            ? 'Role'
            : shown.builtIn || !canEdit.allowed
              ? `Role “${shown.name}”`
              : `Edit role “${shown.name}”`
        }
        wide
      >
        {shown &&
          (shown.builtIn || !canEdit.allowed ? (
            <RoleView
              role={shown}
              vocab={vocab}
              why={shown.builtIn ? 'Built-in roles cannot be changed.' : canEdit.reason}
              onClose={() => setOpen(null)}
            />
          ) : (
            <RoleForm key={shown.slug} role={shown} vocab={vocab} onDone={() => setOpen(null)} />
          ))}
      </FormDialog>
      <h3 className="mb-2 font-semibold">New custom role</h3>
      <Permitted check={can}>
        <RoleForm vocab={vocab} />
      </Permitted>
    </Card>
  );
}

function DeleteRoleButton({ role, disabledReason }: { role: Role; disabledReason: string }) {
  const qc = useQueryClient();
  const remove = useMutation({
    mutationFn: () =>
      unwrap(api.DELETE('/api/v1/roles/{slug}', { params: { path: { slug: role.slug } } })),
    onSuccess: () => void qc.invalidateQueries({ queryKey: ['roles'] }),
  });
  return (
    <ConfirmButton
      label="Delete"
      title={`Delete role “${role.name}”?`}
      body="Only a role no member or identity holds can be deleted; the answer names who holds it."
      disabledReason={disabledReason || undefined}
      onConfirm={() => remove.mutateAsync()}
    />
  );
}

/** A role's permissions, read-only, by subject. */
function RoleView({
  role,
  vocab,
  why,
  onClose,
}: {
  role: Role;
  vocab: Vocabulary;
  why: string;
  onClose: () => void;
}) {
  const held = new Set(role.permissions.map(grantKey));
  const subjects = Object.keys(vocab).filter((s) => vocab[s]?.some((a) => held.has(`${s}:${a}`)));
  return (
    <div className="mt-3 flex flex-col gap-3 text-sm">
      {role.description && <p>{role.description}</p>}
      <p className="text-slate-600">{why}</p>
      {subjects.length ? (
        <dl
          aria-label={`Permissions of ${role.name}`}
          className="grid grid-cols-[minmax(0,10rem)_minmax(0,1fr)] gap-x-3 gap-y-1"
        >
          {subjects.map((s) => (
            <div key={s} className="contents">
              <dt className="font-medium">{s}</dt>
              <dd>
                {(vocab[s] ?? [])
                  .filter((a) => held.has(`${s}:${a}`))
                  .map((a) => {
                    const limit = limitOf(role, s, a);
                    return limit ? `${a} (only ${limit})` : a;
                  })
                  .join(', ')}
              </dd>
            </div>
          ))}
        </dl>
      ) : (
        <p>No permissions.</p>
      )}
      <div className="flex justify-end">
        <Button onClick={onClose}>Close</Button>
      </div>
    </div>
  );
}

/**
 * Creates a custom role (no `role`) or edits one: its name, description and permissions. Only
 * what the user holds can be granted (the platform refuses the rest); its refusals show next
 * to the field they are about.
 */
function RoleForm({
  role,
  vocab,
  onDone,
}: {
  role?: Role;
  vocab: Vocabulary;
  onDone?: () => void;
}) {
  const qc = useQueryClient();
  const { data: me } = useMe();
  const [slug, setSlug] = useState('');
  const [name, setName] = useState(role?.name ?? '');
  const [description, setDescription] = useState(role?.description ?? '');
  const [grants, setGrants] = useState<Set<string>>(
    new Set((role?.permissions ?? []).map(grantKey)),
  );
  const [limit, setLimit] = useState(limitText(role));
  const targets = parseTargets(limit);
  const permissions = () =>
    [...grants].map((g) => {
      const [subject = '', action = ''] = g.split(':');
      return subject === 'AccessTarget' && LIMITABLE.includes(action) && targets.length
        ? { subject, action, targets }
        : { subject, action };
    });
  const save = useMutation({
    mutationFn: () =>
      role
        ? unwrap<Role>(
            api.PATCH('/api/v1/roles/{slug}', {
              params: { path: { slug: role.slug } },
              body: { name: name.trim(), description, permissions: permissions() },
            }),
          )
        : unwrap<Role>(
            api.POST('/api/v1/roles', {
              body: {
                slug,
                name: name.trim() || slug,
                description,
                permissions: permissions(),
              },
            }),
          ),
    onSuccess: () => {
      if (!role) {
        setSlug('');
        setName('');
        setDescription('');
        setGrants(new Set());
        setLimit('');
      }
      void qc.invalidateQueries({ queryKey: ['roles'] });
      onDone?.();
    },
  });
  const refused = splitFieldErrors(save.error, ['slug', 'name', 'description', 'permissions']);
  // The platform's rule, checked as the user types (it checks again, and for reserved names).
  const slugError =
    !slug || ROLE_SLUG.test(slug)
      ? refused.of('slug')
      : 'Use up to 64 lowercase letters, digits and single hyphens (e.g. "deployer").';
  const actions = [...new Set(Object.values(vocab).flat())];
  const permsErrorId = useId();
  // A refused limit names its entry (body.permissions.N.targets…): shown at the limit field.
  const limitRefusal = fieldIssues(save.error)
    .filter((f) => /^body\.permissions\.\d+\.targets(\.|$)/.test(f.field))
    .map((f) => f.message)
    .join('; ');
  const limitError = targetsProblem(limit) ?? (limitRefusal || undefined);
  const permsError = limitRefusal ? undefined : refused.of('permissions');
  const limitable = LIMITABLE.some((a) => grants.has(`AccessTarget:${a}`));
  return (
    <Form
      className="mt-3 flex flex-col gap-2"
      aria-label={role ? `Edit role ${role.name}` : 'New custom role'}
      onSubmit={() => save.mutateAsync()}
      // Editing again makes the last refusal stale.
      onChange={() => save.reset()}
    >
      {!role && (
        <Field
          label="New role slug"
          hint="Lowercase letters, digits and hyphens; it cannot be changed later."
          error={slugError}
        >
          {(id, d, invalid) => (
            <Input
              id={id}
              required
              maxLength={64}
              aria-invalid={invalid}
              aria-describedby={d}
              value={slug}
              onChange={(e) => setSlug(e.target.value)}
            />
          )}
        </Field>
      )}
      <div className="grid gap-2 sm:grid-cols-2">
        <Field
          label="Role name"
          hint={role ? undefined : 'Optional: the slug when empty.'}
          error={refused.of('name')}
        >
          {(id, d, invalid) => (
            <Input
              id={id}
              required={!!role}
              aria-invalid={invalid}
              aria-describedby={d}
              value={name}
              onChange={(e) => setName(e.target.value)}
            />
          )}
        </Field>
        <Field label="Role description" hint="Optional." error={refused.of('description')}>
          {(id, d, invalid) => (
            <Input
              id={id}
              maxLength={500}
              aria-invalid={invalid}
              aria-describedby={d}
              value={description}
              onChange={(e) => setDescription(e.target.value)}
            />
          )}
        </Field>
      </div>
      <div className="relative overflow-x-auto">
        <table className="text-xs" aria-describedby={permsError ? permsErrorId : undefined}>
          <caption className="sr-only">Permissions by subject and action</caption>
          <thead>
            <tr>
              <th scope="col" className="pr-2 text-left">
                Subject
              </th>
              {actions.map((a) => (
                <th key={a} scope="col" className="px-1">
                  {a}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {Object.entries(vocab).map(([subject, acts]) => (
              <tr key={subject}>
                <th scope="row" className="pr-2 text-left font-medium">
                  {subject}
                </th>
                {actions.map((a) => {
                  if (!acts.includes(a)) return <td key={a} />;
                  const held = permission(me, a, subject);
                  const k = `${subject}:${a}`;
                  return (
                    <td key={a} className="px-1 text-center">
                      <input
                        type="checkbox"
                        aria-label={k}
                        // Granting only what you hold: the server refuses the rest anyway.
                        disabled={!held.allowed}
                        title={held.allowed ? undefined : held.reason}
                        checked={grants.has(k)}
                        onChange={(e) => {
                          const next = new Set(grants);
                          if (e.target.checked) next.add(k);
                          else next.delete(k);
                          setGrants(next);
                        }}
                      />
                    </td>
                  );
                })}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {permsError && (
        <p id={permsErrorId} role="alert" className="text-xs text-red-700">
          {permsError}
        </p>
      )}
      {(limitable || limit) && (
        <Field
          label="Limit to access targets"
          hint={
            <>
              For AccessTarget list and connect: target names or patterns with *, separated by
              commas or new lines (e.g. orders-*, billing-db). Empty: every target.
              {limitsDiffer(role) &&
                ' This role limits list and connect differently; saving applies this limit to both.'}
            </>
          }
          error={limitError}
        >
          {(id, d, invalid) => (
            <TextArea
              id={id}
              rows={2}
              aria-invalid={invalid}
              aria-describedby={d}
              value={limit}
              onChange={(e) => setLimit(e.target.value)}
            />
          )}
        </Field>
      )}
      <ErrorText error={refused.rest} />
      <div className="flex justify-end gap-2">
        {onDone && <Button onClick={onDone}>Cancel</Button>}
        <Button
          type="submit"
          tone="primary"
          disabled={save.isPending || !!targetsProblem(limit) || (!role && (!slug || !!slugError))}
        >
          {role ? 'Save role' : 'Create role'}
        </Button>
      </div>
    </Form>
  );
}
