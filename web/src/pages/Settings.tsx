import * as Switch from '@radix-ui/react-switch';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { api, unwrap } from '../api/client';
import type { Invitation, InvitedUser, Member, Page, RolesAnswer } from '../api/types';
import { ConfirmButton } from '../components/Dialogs';
import {
  Button,
  Card,
  CopyButton,
  ErrorText,
  Field,
  Form,
  Input,
  Loading,
  Permitted,
  TextArea,
  TableScroll,
} from '../components/ui';
import { allPages } from '../lib/queries';
import { hasPools, permission, useLicense, useMe } from '../lib/session';
import { useRoles } from './Identities';

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
  return (
    <Card title="Plan and license">
      {license.isPending ? (
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
        <Form id="license-key" className="flex flex-col gap-2" onSubmit={() => install.mutate()}>
          <Field label="License key">
            {(id) => (
              <TextArea id={id} rows={3} value={key} onChange={(e) => setKey(e.target.value)} />
            )}
          </Field>
          <ErrorText error={install.error} />
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
      unwrap(api.PATCH('/api/v1/organization', { body: { requireGatewayPools } })),
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

function MembersCard() {
  const qc = useQueryClient();
  const { data: me } = useMe();
  const roles = useRoles();
  const members = useQuery({
    queryKey: ['members'],
    queryFn: () =>
      allPages((cursor) =>
        unwrap<Page<Member>>(
          api.GET('/api/v1/users', { params: { query: { cursor, limit: 200 } } }),
        ),
      ),
  });
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
  const canCreate = permission(me, 'create', 'Member');
  const canEdit = permission(me, 'edit', 'Member');
  const canDelete = permission(me, 'delete', 'Member');
  const roleOptions = (roles.data?.items ?? []).map((r) => (
    <option key={r.slug} value={r.slug}>
      {r.name}
    </option>
  ));
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
                    <select
                      aria-label={`Role of ${m.email}`}
                      className="rounded border border-slate-300 bg-white p-1 text-sm"
                      value={m.role}
                      disabled={!canEdit.allowed}
                      title={canEdit.allowed ? undefined : canEdit.reason}
                      onChange={(e) => setRole.mutate({ id: m.id, role: e.target.value })}
                    >
                      {roleOptions}
                    </select>
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
      <ErrorText error={setRole.error} />
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
                  <td className="py-1.5">{i.role}</td>
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
      <ErrorText error={invitations.error} />
      <Permitted check={canCreate}>
        <Form className="flex flex-wrap items-end gap-2" onSubmit={() => add.mutate()}>
          <Field label="Invite by email">
            {(id) => (
              <Input
                id={id}
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
          >
            {(id) => (
              <Input
                id={id}
                type="password"
                autoComplete="new-password"
                required
                value={form.password}
                onChange={(e) => setForm({ ...form, password: e.target.value })}
              />
            )}
          </Field>
          <Field label="Member role">
            {(id) => (
              <select
                id={id}
                className="rounded-md border border-slate-400 bg-white px-2 py-1.5 text-sm"
                value={form.role}
                onChange={(e) => setForm({ ...form, role: e.target.value })}
              >
                {roleOptions}
              </select>
            )}
          </Field>
          <Button type="submit" tone="primary" disabled={add.isPending}>
            Invite member
          </Button>
          <div className="w-full">
            <ErrorText error={add.error} />
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

function RolesCard() {
  const qc = useQueryClient();
  const { data: me } = useMe();
  const roles = useQuery({
    queryKey: ['roles'],
    queryFn: () => unwrap<RolesAnswer>(api.GET('/api/v1/roles')),
  });
  const [slug, setSlug] = useState('');
  const [grants, setGrants] = useState<Set<string>>(new Set());
  const create = useMutation({
    mutationFn: () =>
      unwrap(
        api.POST('/api/v1/roles', {
          body: {
            slug,
            name: slug,
            description: '',
            permissions: [...grants].map((g) => {
              const [subject = '', action = ''] = g.split(':');
              return { subject, action };
            }),
          },
        }),
      ),
    onSuccess: () => {
      setSlug('');
      setGrants(new Set());
      void qc.invalidateQueries({ queryKey: ['roles'] });
    },
  });
  const can = permission(me, 'create', 'Role');
  // The platform's rule, checked as the user types (it checks again, and for reserved names).
  const slugError =
    !slug || ROLE_SLUG.test(slug)
      ? null
      : 'Use up to 64 lowercase letters, digits and single hyphens (e.g. "deployer").';
  if (roles.isPending) return <Loading what="roles" />;
  if (roles.error) return <ErrorText error={roles.error} />;
  const vocab = roles.data.vocabulary ?? {};
  const actions = [...new Set(Object.values(vocab).flat())];
  return (
    <Card title="Roles">
      <ul className="mb-3 text-sm">
        {roles.data.items.map((r) => (
          <li key={r.slug} className="py-0.5">
            <span className="font-medium">{r.name}</span>{' '}
            <span className="text-slate-600">
              —{' '}
              {r.description ||
                `${r.permissions.length} ${r.permissions.length === 1 ? 'permission' : 'permissions'}`}
            </span>
          </li>
        ))}
      </ul>
      <Permitted check={can}>
        <Form className="flex flex-col gap-2" onSubmit={() => create.mutate()}>
          <Field
            label="New role slug"
            hint="Lowercase letters, digits and hyphens."
            error={slugError}
          >
            {(id, d) => (
              <Input
                id={id}
                required
                maxLength={64}
                aria-invalid={!!slugError}
                aria-describedby={d}
                value={slug}
                onChange={(e) => setSlug(e.target.value)}
              />
            )}
          </Field>
          <div className="relative overflow-x-auto">
            <table className="text-xs">
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
          <ErrorText error={create.error} />
          <div>
            <Button
              type="submit"
              tone="primary"
              disabled={create.isPending || !slug || !!slugError}
            >
              Create role
            </Button>
          </div>
        </Form>
      </Permitted>
    </Card>
  );
}
