import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { Link, useNavigate, useParams } from '@tanstack/react-router';
import { useState } from 'react';
import { api, ApiError, unwrap } from '../api/client';
import type {
  CreatedIdentityToken,
  Identity,
  IdentityToken,
  KubernetesAuthConfig,
  KubernetesAuthSaved,
  Page,
  Role,
} from '../api/types';
import { ConfirmButton } from '../components/Dialogs';
import { defaultChoice, GatewayPicker, type GatewayChoice } from '../components/GatewayPicker';
import {
  Button,
  Card,
  CopyButton,
  Empty,
  ErrorText,
  Field,
  Form,
  Input,
  LoadError,
  ListCount,
  Loading,
  matches,
  SearchField,
  Permitted,
  relativeTime,
  splitFieldErrors,
  TableHead,
  TableScroll,
  TextArea,
} from '../components/ui';
import { PageGate } from '../components/PageGate';
import { RoleChange } from '../components/RoleChange';
import { allPages, LIST_REFRESH_MS, useGateways, usePools } from '../lib/queries';
import { hasPools, permission, useLicense, useMe } from '../lib/session';

export function useRoles() {
  return useQuery({
    queryKey: ['roles'],
    queryFn: () => unwrap<Page<Role>>(api.GET('/api/v1/roles')),
  });
}

export function IdentitiesPage() {
  return (
    <PageGate title="Identities" what="machine identities" subject="Identity" action="read">
      <IdentitiesPageView />
    </PageGate>
  );
}

function IdentitiesPageView() {
  const qc = useQueryClient();
  const { data: me } = useMe();
  const roles = useRoles();
  const identities = useQuery({
    queryKey: ['identities'],
    // Created elsewhere (a teammate, Terraform): shown within half a minute, and on return to the tab.
    refetchInterval: LIST_REFRESH_MS,
    refetchOnWindowFocus: true,
    queryFn: () =>
      allPages((cursor) =>
        unwrap<Page<Identity>>(
          api.GET('/api/v1/identities', { params: { query: { cursor, limit: 200 } } }),
        ),
      ),
  });
  const [name, setName] = useState('');
  const [role, setRole] = useState('member');
  const create = useMutation({
    mutationFn: () => unwrap<Identity>(api.POST('/api/v1/identities', { body: { name, role } })),
    onSuccess: () => {
      setName('');
      void qc.invalidateQueries({ queryKey: ['identities'] });
    },
  });
  const refused = splitFieldErrors(create.error, ['name', 'role']);
  const can = permission(me, 'create', 'Identity');
  const [q, setQ] = useState('');
  const all = identities.data?.items ?? [];
  const shown = all.filter((i) => matches(q, i.name, i.role));
  return (
    <div className="flex flex-col gap-4">
      <h1 className="text-2xl font-semibold">Identities</h1>
      <Card title="New machine identity">
        <Permitted check={can}>
          <Form
            className="flex flex-wrap items-start gap-3"
            onSubmit={() => create.mutateAsync()}
            onChange={() => create.reset()}
          >
            <Field label="Identity name" error={refused.of('name')}>
              {(id, d, invalid) => (
                <Input
                  id={id}
                  required
                  aria-describedby={d}
                  aria-invalid={invalid}
                  value={name}
                  onChange={(e) => setName(e.target.value)}
                />
              )}
            </Field>
            <Field label="Role" error={refused.of('role')}>
              {(id, d, invalid) => (
                <select
                  id={id}
                  aria-describedby={d}
                  aria-invalid={invalid}
                  className="rounded-md border border-slate-400 bg-white px-2 py-1.5 text-sm"
                  value={role}
                  onChange={(e) => setRole(e.target.value)}
                >
                  {(roles.data?.items ?? []).map((r) => (
                    <option key={r.slug} value={r.slug}>
                      {r.name}
                    </option>
                  ))}
                </select>
              )}
            </Field>
            <div className="pt-6">
              <Button type="submit" tone="primary" disabled={create.isPending}>
                Create identity
              </Button>
            </div>
            <div className="w-full">
              <ErrorText error={refused.rest} />
            </div>
          </Form>
        </Permitted>
      </Card>
      <Card title="Identities">
        {identities.isPending ? (
          <Loading what="identities" />
        ) : identities.error ? (
          <ErrorText error={identities.error} />
        ) : !identities.data.items.length ? (
          <Empty title="No identities yet">
            Machine identities let workloads call gatepool with tokens or Kubernetes auth.
          </Empty>
        ) : (
          <div className="flex flex-col gap-2">
            <div className="flex flex-wrap items-end gap-3">
              <SearchField label="Search identities" value={q} onChange={setQ} />
              <ListCount
                shown={shown.length}
                total={all.length}
                more={!!identities.data.nextCursor}
                noun="identity"
                plural="identities"
              />
            </div>
            {!shown.length ? (
              <Empty title={`No identity matches “${q}”`}>Search looks at names and roles.</Empty>
            ) : (
              <ul className="divide-y divide-slate-100">
                {shown.map((i) => (
                  <IdentityRow key={i.id} identity={i} />
                ))}
              </ul>
            )}
          </div>
        )}
      </Card>
    </div>
  );
}

/** Deleting an identity also deletes its tokens and its Kubernetes auth. */
function useDeleteIdentity(id: string) {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: () => unwrap(api.DELETE('/api/v1/identities/{id}', { params: { path: { id } } })),
    onSuccess: () => {
      qc.removeQueries({ queryKey: ['identity', id] });
      // Gone from the list at once: the page navigated to must not show it until the refetch.
      qc.setQueryData<Page<Identity>>(['identities'], (list) =>
        list ? { ...list, items: list.items.filter((i) => i.id !== id) } : list,
      );
      void qc.invalidateQueries({ queryKey: ['identities'] });
    },
  });
}

function DeleteIdentityButton({
  identity,
  onDeleted,
  small,
}: {
  identity: Identity;
  onDeleted?: () => void;
  small?: boolean;
}) {
  const { data: me } = useMe();
  const can = permission(me, 'delete', 'Identity');
  const remove = useDeleteIdentity(identity.id);
  return (
    <ConfirmButton
      label="Delete"
      small={small}
      title={`Delete identity “${identity.name}”?`}
      body="Its access tokens stop working at once and its Kubernetes auth is removed."
      typeToConfirm={identity.name}
      disabledReason={can.allowed ? undefined : can.reason}
      onConfirm={() => remove.mutateAsync().then(() => onDeleted?.())}
    />
  );
}

/** The role an identity acts with, by its name; changed with a confirmation (Identity:edit). */
function IdentityRoleCard({ identity }: { identity: Identity }) {
  const qc = useQueryClient();
  const { data: me } = useMe();
  const roles = useRoles();
  const save = useMutation({
    mutationFn: (role: string) =>
      unwrap<Identity>(
        api.PATCH('/api/v1/identities/{id}', {
          params: { path: { id: identity.id } },
          body: { role },
        }),
      ),
    onSettled: () => {
      void qc.invalidateQueries({ queryKey: ['identity', identity.id] });
      void qc.invalidateQueries({ queryKey: ['identities'] });
    },
  });
  return (
    <Card title="Role">
      <div className="flex flex-wrap items-center gap-3 text-sm" data-testid="identity-role">
        {roles.data ? (
          <RoleChange
            who={identity.name}
            current={identity.role}
            roles={roles.data.items}
            canEdit={permission(me, 'edit', 'Identity')}
            onSave={(role) => save.mutateAsync(role)}
          />
        ) : (
          // Without Role:read the list of roles is unknown: the slug is all there is.
          <span>{identity.role}</span>
        )}
      </div>
    </Card>
  );
}

/** A role's display name from the roles list, or its slug while that is unknown. */
function useRoleName(slug: string): string {
  const roles = useRoles();
  return roles.data?.items.find((r) => r.slug === slug)?.name ?? slug;
}

function IdentityRow({ identity: i }: { identity: Identity }) {
  const roleName = useRoleName(i.role);
  return (
    <li className="flex items-center justify-between gap-3 py-2 text-sm" data-identity={i.name}>
      <Link
        to="/identities/$id"
        params={{ id: i.id }}
        className="min-w-0 font-medium [overflow-wrap:anywhere] text-indigo-800 underline"
      >
        {i.name}
      </Link>
      <span className="flex shrink-0 items-center gap-3">
        <span className="text-slate-600">{roleName}</span>
        <DeleteIdentityButton identity={i} small />
      </span>
    </li>
  );
}

export function IdentityPage() {
  return (
    <PageGate title="Identity" what="machine identities" subject="Identity" action="read">
      <IdentityPageView />
    </PageGate>
  );
}

function IdentityPageView() {
  const { id } = useParams({ strict: false }) as { id: string };
  const identity = useQuery({
    queryKey: ['identity', id],
    queryFn: () =>
      unwrap<Identity>(api.GET('/api/v1/identities/{id}', { params: { path: { id } } })),
  });
  const navigate = useNavigate();
  if (identity.isPending) return <Loading what="identity" />;
  if (identity.error)
    return (
      <LoadError
        error={identity.error}
        what="Identity"
        back={{ to: '/identities', label: 'All identities' }}
      />
    );
  return (
    <div className="flex flex-col gap-4">
      <p className="text-sm [overflow-wrap:anywhere]">
        <Link to="/identities" className="text-indigo-800 underline">
          Identities
        </Link>{' '}
        / {identity.data.name}
      </p>
      <div className="flex flex-wrap items-start justify-between gap-3">
        <h1 className="min-w-0 text-2xl font-semibold [overflow-wrap:anywhere]">
          {identity.data.name}
        </h1>
        <DeleteIdentityButton
          identity={identity.data}
          small={false}
          onDeleted={() => void navigate({ to: '/identities' })}
        />
      </div>
      <IdentityRoleCard identity={identity.data} />
      <IdentityTokens id={id} />
      <KubernetesAuthForm identityId={id} />
    </div>
  );
}

/** Units a token's lifetime is typed in, in seconds. */
const TTL_UNITS = { hours: 3600, days: 86400 } as const;
type TtlUnit = keyof typeof TTL_UNITS;
// The platform's bounds (createIdentityToken): at least a minute, at most a year.
const TTL_MIN = 60;
const TTL_MAX = 365 * 86400;

/** A token's lifetime as typed: its seconds, or why it cannot be sent. */
function tokenTtl(amount: string, unit: TtlUnit): { seconds?: number; error?: string } {
  const n = Number(amount);
  if (amount.trim() === '' || !Number.isFinite(n) || n <= 0)
    return { error: 'Enter how long the token is valid (a positive number).' };
  const seconds = Math.round(n * TTL_UNITS[unit]);
  if (seconds < TTL_MIN || seconds > TTL_MAX)
    return { error: 'A token is valid for at least a minute and at most 365 days.' };
  return { seconds };
}

function IdentityTokens({ id }: { id: string }) {
  const qc = useQueryClient();
  const { data: me } = useMe();
  const [shown, setShown] = useState<{ token: string; name: string; expiresAt: string } | null>(
    null,
  );
  const [name, setName] = useState('');
  // The platform's default lifetime: 30 days.
  const [amount, setAmount] = useState('30');
  const [unit, setUnit] = useState<TtlUnit>('days');
  const ttl = tokenTtl(amount, unit);
  const tokens = useQuery({
    queryKey: ['identity', id, 'tokens'],
    queryFn: () =>
      allPages((cursor) =>
        unwrap<Page<IdentityToken>>(
          api.GET('/api/v1/identities/{id}/tokens', {
            params: { path: { id }, query: { cursor, limit: 200 } },
          }),
        ),
      ),
  });
  const refresh = () => void qc.invalidateQueries({ queryKey: ['identity', id, 'tokens'] });
  const create = useMutation({
    mutationFn: () =>
      unwrap<CreatedIdentityToken>(
        api.POST('/api/v1/identities/{id}/tokens', {
          params: { path: { id } },
          body: { name: name.trim(), ttlSeconds: ttl.seconds ?? 0 },
        }),
      ),
    onSuccess: (t) => {
      setShown({ token: t.token, name: t.name, expiresAt: t.expiresAt });
      setName('');
    },
    onSettled: refresh,
  });
  const revoke = useMutation({
    mutationFn: (tokenId: string) =>
      unwrap(
        api.DELETE('/api/v1/identities/{id}/tokens/{tokenId}', {
          params: { path: { id, tokenId } },
        }),
      ),
    onSettled: refresh,
  });
  const refused = splitFieldErrors(create.error, ['name', 'ttlSeconds']);
  const can = permission(me, 'edit', 'Identity');
  const now = Date.now();
  return (
    <Card title="Access tokens">
      <Permitted check={can}>
        <Form
          className="flex flex-wrap items-start gap-3"
          aria-label="New access token"
          onSubmit={() => {
            setShown(null);
            return create.mutateAsync();
          }}
          // Editing again makes the last refusal stale.
          onChange={() => create.reset()}
        >
          <Field
            label="Token name"
            hint="Optional: what uses it, e.g. “ci-pipeline”."
            error={refused.of('name')}
          >
            {(fid, d, invalid) => (
              <Input
                id={fid}
                maxLength={128}
                aria-describedby={d}
                aria-invalid={invalid}
                value={name}
                onChange={(e) => setName(e.target.value)}
              />
            )}
          </Field>
          <Field
            label="Valid for"
            hint={
              ttl.seconds
                ? `Expires ${new Date(now + ttl.seconds * 1000).toLocaleString()}.`
                : '1 minute to 365 days.'
            }
            error={ttl.error ?? refused.of('ttlSeconds')}
          >
            {(fid, d, invalid) => (
              <span className="flex gap-1">
                <Input
                  id={fid}
                  type="number"
                  min={0}
                  step="any"
                  className="w-24"
                  aria-describedby={d}
                  aria-invalid={invalid}
                  value={amount}
                  onChange={(e) => setAmount(e.target.value)}
                />
                <select
                  aria-label="Unit of the validity"
                  className="rounded-md border border-slate-400 bg-white px-2 py-1.5 text-sm"
                  value={unit}
                  onChange={(e) => setUnit(e.target.value as TtlUnit)}
                >
                  <option value="hours">hours</option>
                  <option value="days">days</option>
                </select>
              </span>
            )}
          </Field>
          <div className="pt-6">
            <Button type="submit" tone="primary" disabled={create.isPending || !!ttl.error}>
              Create token
            </Button>
          </div>
          <div className="w-full">
            <ErrorText error={refused.rest} />
          </div>
        </Form>
      </Permitted>
      {shown ? (
        <div
          role="status"
          className="mt-3 flex flex-col gap-2 rounded-md border border-green-300 bg-green-50 p-3 text-sm"
        >
          <p>
            Token “{shown.name || 'unnamed'}” created; it expires{' '}
            {new Date(shown.expiresAt).toLocaleString()}. Shown once: store it now.
          </p>
          <div className="flex flex-wrap items-center gap-2">
            <code className="max-w-full overflow-x-auto rounded bg-white px-2 py-1 text-xs">
              {shown.token}
            </code>
            <CopyButton text={shown.token} label="Copy token" />
          </div>
        </div>
      ) : (
        <p className="mt-3 text-sm text-slate-600">Tokens are shown once, when created.</p>
      )}
      <div className="mt-3">
        {tokens.isPending ? (
          <Loading what="tokens" />
        ) : tokens.error ? (
          <ErrorText error={tokens.error} />
        ) : !tokens.data.items.length ? (
          <p className="text-sm text-slate-600">No tokens yet.</p>
        ) : (
          <TableScroll>
            <table className="w-full text-left text-sm">
              <TableHead
                columns={['Name', 'Created', 'Expires', 'Last used', 'Status', '']}
                cell="py-1 pr-2"
              />
              <tbody>
                {tokens.data.items.map((t) => {
                  const expired = !!t.expiresAt && new Date(t.expiresAt).getTime() <= now;
                  return (
                    <tr key={t.id} className="border-t border-slate-100" data-token={t.id}>
                      <td className="py-2 pr-2 [overflow-wrap:anywhere]">
                        {t.name || <span className="text-slate-600">unnamed</span>}
                      </td>
                      <td className="py-2 pr-2 whitespace-nowrap">
                        <time dateTime={t.createdAt} title={new Date(t.createdAt).toLocaleString()}>
                          {relativeTime(t.createdAt)}
                        </time>
                      </td>
                      <td className="py-2 pr-2 whitespace-nowrap">
                        {t.expiresAt ? (
                          <time dateTime={t.expiresAt}>
                            {new Date(t.expiresAt).toLocaleString()}
                          </time>
                        ) : (
                          'never'
                        )}
                      </td>
                      <td className="py-2 pr-2 whitespace-nowrap">{relativeTime(t.lastUsedAt)}</td>
                      <td className="py-2 pr-2">
                        {t.revokedAt ? 'Revoked' : expired ? 'Expired' : 'Active'}
                      </td>
                      <td className="py-2">
                        {!t.revokedAt && (
                          <ConfirmButton
                            label="Revoke"
                            confirmLabel="Revoke"
                            title={`Revoke token “${t.name || t.id}”?`}
                            body="Whatever uses it is refused from now on. This cannot be undone."
                            disabledReason={can.allowed ? undefined : can.reason}
                            onConfirm={() => revoke.mutateAsync(t.id)}
                          />
                        )}
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </TableScroll>
        )}
      </div>
    </Card>
  );
}

const lines = (s: string) =>
  s
    .split(/[\n,]/)
    .map((x) => x.trim())
    .filter(Boolean);

function choiceOf(c: KubernetesAuthConfig): GatewayChoice {
  if (c.gatewayPoolId) return { kind: 'pool', id: c.gatewayPoolId };
  if (c.gatewayId) return { kind: 'gateway', id: c.gatewayId };
  return { kind: 'direct' };
}

export function KubernetesAuthForm({ identityId }: { identityId: string }) {
  const qc = useQueryClient();
  const { data: me } = useMe();
  const license = useLicense();
  const licensed = hasPools(license);
  const pools = usePools(licensed);
  const gateways = useGateways();
  const org = useQuery({
    queryKey: ['organization'],
    queryFn: () => unwrap<{ requireGatewayPools?: boolean }>(api.GET('/api/v1/organization')),
  });
  // Kept here: the editor remounts with the saved config, the save's verdict stays shown.
  const [result, setResult] = useState<KubernetesAuthSaved | null>(null);
  const config = useQuery({
    queryKey: ['k8s-auth', identityId],
    queryFn: async () => {
      try {
        return await unwrap<KubernetesAuthConfig>(
          api.GET('/api/v1/identities/{identityId}/kubernetes-auth', {
            params: { path: { identityId } },
          }),
        );
      } catch (err) {
        if (err instanceof ApiError && err.status === 404) return null;
        throw err;
      }
    },
  });
  if (config.isPending) return <Loading what="Kubernetes auth" />;
  if (config.error) return <ErrorText error={config.error} />;
  return (
    <KubernetesAuthEditor
      key={config.dataUpdatedAt}
      result={result}
      setResult={setResult}
      identityId={identityId}
      existing={config.data ?? undefined}
      gateways={gateways.data?.items ?? []}
      pools={pools.data?.items ?? []}
      licensed={licensed}
      requirePools={!!org.data?.requireGatewayPools}
      canEdit={permission(me, config.data ? 'edit' : 'create', 'KubernetesAuth')}
      canAttachPool={permission(me, 'attach', 'GatewayPool')}
      canAttachGateway={permission(me, 'attach', 'Gateway')}
      onSaved={() => void qc.invalidateQueries({ queryKey: ['k8s-auth', identityId] })}
    />
  );
}

interface EditorProps {
  identityId: string;
  existing?: KubernetesAuthConfig;
  gateways: Parameters<typeof GatewayPicker>[0]['gateways'];
  pools: Parameters<typeof GatewayPicker>[0]['pools'];
  licensed: boolean;
  requirePools: boolean;
  canEdit: { allowed: boolean; reason: string };
  canAttachPool: { allowed: boolean; reason: string };
  canAttachGateway: { allowed: boolean; reason: string };
  onSaved: () => void;
  result: KubernetesAuthSaved | null;
  setResult: (r: KubernetesAuthSaved | null) => void;
}

function KubernetesAuthEditor(p: EditorProps) {
  const e = p.existing;
  const [host, setHost] = useState(e?.kubernetesHost ?? '');
  const [caCert, setCaCert] = useState(e?.caCert ?? '');
  const [jwt, setJwt] = useState('');
  const [replacingJwt, setReplacingJwt] = useState(!e?.tokenReviewerJwtSet);
  const [namespaces, setNamespaces] = useState((e?.allowedNamespaces ?? []).join(', '));
  const [names, setNames] = useState((e?.allowedNames ?? []).join(', '));
  const [audience, setAudience] = useState(e?.allowedAudience ?? '');
  const [ttl, setTtl] = useState(String(e?.accessTokenTtl ?? 3600));
  const [maxTtl, setMaxTtl] = useState(String(e?.accessTokenMaxTtl ?? 86400));
  // Until the user picks: what is saved, or for a new config the default (the pools may load
  // after the form opens, so it is derived, not kept).
  const [picked, setChoice] = useState<GatewayChoice | null>(null);
  const choice =
    picked ?? (e ? choiceOf(e) : defaultChoice(p.pools, p.licensed && p.canAttachPool.allowed));
  const { result, setResult } = p;
  const save = useMutation({
    mutationFn: () => {
      const body = {
        kubernetesHost: host.trim(),
        caCert: caCert.trim() || null,
        ...(replacingJwt ? { tokenReviewerJwt: jwt.trim() || null } : {}),
        allowedNamespaces: lines(namespaces),
        allowedNames: lines(names),
        allowedAudience: audience.trim() || null,
        accessTokenTtl: Number(ttl),
        accessTokenMaxTtl: Number(maxTtl),
        gatewayId: choice.kind === 'gateway' ? choice.id : null,
        gatewayPoolId: choice.kind === 'pool' ? choice.id : null,
      };
      const path = { params: { path: { identityId: p.identityId } } };
      return e
        ? unwrap<KubernetesAuthSaved>(
            api.PATCH('/api/v1/identities/{identityId}/kubernetes-auth', { ...path, body }),
          )
        : unwrap<KubernetesAuthSaved>(
            api.POST('/api/v1/identities/{identityId}/kubernetes-auth', { ...path, body }),
          );
    },
    onSuccess: (r) => {
      setResult(r);
      p.onSaved();
    },
  });
  const ro = !p.canEdit.allowed;
  const refused = splitFieldErrors(save.error, [
    'kubernetesHost',
    'caCert',
    // Shown next to its field only while that field is there (not when it is kept as "set").
    ...(replacingJwt ? ['tokenReviewerJwt'] : []),
    'allowedNamespaces',
    'allowedNames',
    'allowedAudience',
    'accessTokenTtl',
    'accessTokenMaxTtl',
    'gatewayId',
    'gatewayPoolId',
  ]);
  return (
    <Card title="Kubernetes auth">
      {ro && <p className="mb-2 text-sm text-slate-600">{p.canEdit.reason}</p>}
      <Form
        className="flex flex-col gap-3"
        onSubmit={() => {
          setResult(null);
          return save.mutateAsync();
        }}
        // Editing again makes the last refusal stale.
        onChange={() => save.reset()}
      >
        <fieldset disabled={ro} className="flex flex-col gap-3">
          <Field
            label="Kubernetes host"
            error={refused.of('kubernetesHost')}
            hint='The API server URL, e.g. "https://10.0.0.1:6443".'
          >
            {(id, d, invalid) => (
              <Input
                id={id}
                aria-invalid={invalid}
                required
                aria-describedby={d}
                value={host}
                onChange={(x) => setHost(x.target.value)}
              />
            )}
          </Field>
          <Field
            label="CA certificate"
            error={refused.of('caCert')}
            hint="PEM; empty to use the system CAs."
          >
            {(id, d, invalid) => (
              <TextArea
                id={id}
                aria-invalid={invalid}
                rows={4}
                aria-describedby={d}
                value={caCert}
                onChange={(x) => setCaCert(x.target.value)}
              />
            )}
          </Field>
          {replacingJwt ? (
            <Field
              label="Token reviewer JWT"
              error={refused.of('tokenReviewerJwt')}
              hint="Write-only: it is stored encrypted and never shown again."
            >
              {(id, d, invalid) => (
                <TextArea
                  id={id}
                  aria-invalid={invalid}
                  rows={3}
                  aria-describedby={d}
                  value={jwt}
                  onChange={(x) => setJwt(x.target.value)}
                />
              )}
            </Field>
          ) : (
            <div className="flex items-center gap-3 text-sm">
              <span className="font-medium">Token reviewer JWT</span>
              <span className="rounded bg-green-100 px-2 py-0.5 text-xs text-green-900">set</span>
              <Button small onClick={() => setReplacingJwt(true)}>
                Replace
              </Button>
            </div>
          )}
          <div className="grid gap-3 md:grid-cols-3">
            <Field
              label="Allowed namespaces"
              error={refused.of('allowedNamespaces')}
              hint="Comma-separated."
            >
              {(id, d, invalid) => (
                <Input
                  id={id}
                  aria-invalid={invalid}
                  aria-describedby={d}
                  value={namespaces}
                  onChange={(x) => setNamespaces(x.target.value)}
                />
              )}
            </Field>
            <Field
              label="Allowed service accounts"
              error={refused.of('allowedNames')}
              hint="Comma-separated names."
            >
              {(id, d, invalid) => (
                <Input
                  id={id}
                  aria-invalid={invalid}
                  aria-describedby={d}
                  value={names}
                  onChange={(x) => setNames(x.target.value)}
                />
              )}
            </Field>
            <Field label="Allowed audience" error={refused.of('allowedAudience')} hint="Optional.">
              {(id, d, invalid) => (
                <Input
                  id={id}
                  aria-invalid={invalid}
                  aria-describedby={d}
                  value={audience}
                  onChange={(x) => setAudience(x.target.value)}
                />
              )}
            </Field>
            <Field label="Access token TTL (seconds)" error={refused.of('accessTokenTtl')}>
              {(id, d, invalid) => (
                <Input
                  id={id}
                  aria-invalid={invalid}
                  aria-describedby={d}
                  type="number"
                  value={ttl}
                  onChange={(x) => setTtl(x.target.value)}
                />
              )}
            </Field>
            <Field label="Access token max TTL (seconds)" error={refused.of('accessTokenMaxTtl')}>
              {(id, d, invalid) => (
                <Input
                  id={id}
                  aria-invalid={invalid}
                  aria-describedby={d}
                  type="number"
                  value={maxTtl}
                  onChange={(x) => setMaxTtl(x.target.value)}
                />
              )}
            </Field>
          </div>
          <GatewayPicker
            value={choice}
            onChange={setChoice}
            gateways={p.gateways}
            pools={p.pools}
            poolsLicensed={p.licensed}
            requirePools={p.requirePools}
            poolsDisabledReason={p.canAttachPool.allowed ? undefined : p.canAttachPool.reason}
            gatewaysDisabledReason={
              p.canAttachGateway.allowed ? undefined : p.canAttachGateway.reason
            }
            legend="Reach the Kubernetes API through"
            error={
              [refused.of('gatewayId'), refused.of('gatewayPoolId')].filter(Boolean).join('; ') ||
              undefined
            }
          />
        </fieldset>
        <ErrorText error={refused.rest} />
        {result?.validation && (
          <div role="status" className="rounded-md border border-slate-300 bg-slate-50 p-3 text-sm">
            <p>
              Saved. Validation: <strong>{result.validation.status}</strong> —{' '}
              {result.validation.message}
            </p>
            {(result.warnings ?? []).map((w) => (
              <p key={w} className="mt-1 text-amber-800">
                Warning: {w}
              </p>
            ))}
          </div>
        )}
        {!ro && (
          <div>
            <Button
              type="submit"
              tone="primary"
              disabled={save.isPending || choice.kind === 'none'}
              title={
                choice.kind === 'none'
                  ? 'Choose how to reach the Kubernetes API (a pool or a gateway).'
                  : undefined
              }
            >
              {save.isPending ? 'Saving and checking…' : 'Save Kubernetes auth'}
            </Button>
          </div>
        )}
      </Form>
    </Card>
  );
}
