import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { api, unwrap } from '../api/client';
import type { AccessTarget, Page } from '../api/types';
import { ConfirmButton, FormDialog } from '../components/Dialogs';
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
  ListCount,
  Loading,
  matches,
  SearchField,
  splitFieldErrors,
  TableHead,
  TableScroll,
} from '../components/ui';
import { PageGate } from '../components/PageGate';
import { allPages, LIST_REFRESH_MS, useGateways, usePools } from '../lib/queries';
import { warningNotices } from '../lib/notices';
import { hasPools, permission, useLicense, useMe } from '../lib/session';

const TARGET_NAME = /^(?=.{1,63}$)[a-z0-9]+(-[a-z0-9]+)*$/;
const LOOKS_LIKE_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const PROTOCOLS: AccessTarget['protocol'][] = ['tcp', 'postgres', 'http', 'kubernetes'];

interface TargetFields {
  name: string;
  host: string;
  port: string;
  protocol: AccessTarget['protocol'];
  description: string;
}

const choiceOf = (t: AccessTarget): GatewayChoice =>
  t.gatewayPoolId
    ? { kind: 'pool', id: t.gatewayPoolId }
    : t.gatewayId
      ? { kind: 'gateway', id: t.gatewayId }
      : { kind: 'direct' };

/** What the target form needs to offer a pool or a gateway, and who may pick which. */
function usePickerProps() {
  const { data: me } = useMe();
  const license = useLicense();
  const licensed = hasPools(license);
  const pools = usePools(licensed);
  const gateways = useGateways();
  const org = useQuery({
    queryKey: ['organization'],
    queryFn: () => unwrap<{ requireGatewayPools?: boolean }>(api.GET('/api/v1/organization')),
  });
  const attachPool = permission(me, 'attach', 'GatewayPool');
  const attachGateway = permission(me, 'attach', 'Gateway');
  return {
    gateways: gateways.data?.items ?? [],
    pools: pools.data?.items ?? [],
    poolsLicensed: licensed,
    requirePools: !!org.data?.requireGatewayPools,
    poolsDisabledReason: attachPool.allowed ? undefined : attachPool.reason,
    gatewaysDisabledReason: attachGateway.allowed ? undefined : attachGateway.reason,
  };
}

/**
 * The access target form, for creating (empty) and editing (`target`, prefilled). Submitting
 * runs `save` with the fields and the choice; its refusal is shown next to the form and goes
 * away once the user edits again.
 */
function TargetForm({
  target,
  submitLabel,
  onSaved,
  onCancel,
}: {
  target?: AccessTarget;
  submitLabel: string;
  onSaved: () => void;
  onCancel?: () => void;
}) {
  const qc = useQueryClient();
  const picker = usePickerProps();
  const initial: TargetFields = {
    name: target?.name ?? '',
    host: target?.host ?? '',
    port: String(target?.port ?? 5432),
    protocol: target?.protocol ?? 'postgres',
    description: target?.description ?? '',
  };
  const [form, setForm] = useState<TargetFields>(initial);
  // Until the user picks: the target's own, or for a new one the default (the pools may load
  // after the form opens, so it is derived, not kept).
  const [picked, setVia] = useState<GatewayChoice | null>(null);
  const via =
    picked ??
    (target
      ? choiceOf(target)
      : defaultChoice(picker.pools, picker.poolsLicensed && !picker.poolsDisabledReason));
  const save = useMutation({
    mutationFn: () => {
      const through = {
        ...(via.kind === 'pool' ? { gatewayPoolId: via.id } : {}),
        ...(via.kind === 'gateway' ? { gatewayId: via.id } : {}),
      };
      if (!target) {
        return unwrap<{ warnings?: string[] }>(
          api.POST('/api/v1/access-targets', {
            body: {
              name: form.name,
              host: form.host,
              port: Number(form.port),
              protocol: form.protocol,
              ...(form.description.trim() ? { description: form.description } : {}),
              ...through,
            },
          }),
        );
      }
      // Only what changed: an untouched gateway stays attached as it was.
      const was = choiceOf(target);
      const moved =
        was.kind !== via.kind ||
        ((was.kind === 'pool' || was.kind === 'gateway') &&
          (via.kind === 'pool' || via.kind === 'gateway') &&
          was.id !== via.id);
      return unwrap<{ warnings?: string[] }>(
        api.PATCH('/api/v1/access-targets/{target}', {
          params: { path: { target: target.id } },
          body: {
            ...(form.name !== initial.name ? { name: form.name } : {}),
            ...(form.host !== initial.host ? { host: form.host } : {}),
            ...(form.port !== initial.port ? { port: Number(form.port) } : {}),
            ...(form.protocol !== initial.protocol ? { protocol: form.protocol } : {}),
            ...(form.description !== initial.description ? { description: form.description } : {}),
            ...(moved ? through : {}),
          },
        }),
      );
    },
    onSuccess: (saved) => {
      // E.g. a gateway that may not reach the host (--allow): saved, and said until dismissed.
      warningNotices.add(saved.warnings);
      if (!target) setForm({ ...form, name: '', description: '' });
      void qc.invalidateQueries({ queryKey: ['access-targets'] });
      void qc.invalidateQueries({ queryKey: ['pool'] });
      void qc.invalidateQueries({ queryKey: ['pools'] });
      onSaved();
    },
  });
  const set = (patch: Partial<TargetFields>) => setForm({ ...form, ...patch });
  // The platform's rules, checked as the user types (it checks again).
  const refused = splitFieldErrors(save.error, [
    'name',
    'host',
    'port',
    'protocol',
    'description',
    'gatewayId',
    'gatewayPoolId',
  ]);
  const nameError = !form.name
    ? refused.of('name')
    : !TARGET_NAME.test(form.name)
      ? 'Use up to 63 lowercase letters, digits and single hyphens (e.g. "pg-main").'
      : LOOKS_LIKE_ID.test(form.name)
        ? 'A name must not look like an ID (targets are addressed by ID or name).'
        : refused.of('name');
  const portError =
    form.port === '' ||
    (/^\d+$/.test(form.port) && Number(form.port) >= 1 && Number(form.port) <= 65535)
      ? refused.of('port')
      : 'The port must be between 1 and 65535 (a whole number).';
  return (
    <Form
      className="flex flex-col gap-3"
      onSubmit={() => save.mutateAsync()}
      // Editing again makes the last refusal stale.
      onChange={() => save.reset()}
    >
      <div className="grid gap-3 sm:grid-cols-2">
        <Field label="Target name" error={nameError}>
          {(id, d, invalid) => (
            <Input
              id={id}
              required
              maxLength={63}
              value={form.name}
              aria-invalid={invalid}
              aria-describedby={d}
              onChange={(e) => set({ name: e.target.value })}
            />
          )}
        </Field>
        <Field label="Host" error={refused.of('host')}>
          {(id, d, invalid) => (
            <Input
              id={id}
              required
              aria-describedby={d}
              aria-invalid={invalid}
              value={form.host}
              onChange={(e) => set({ host: e.target.value })}
            />
          )}
        </Field>
        <Field label="Port" error={portError}>
          {(id, d, invalid) => (
            <Input
              id={id}
              type="number"
              required
              min={1}
              max={65535}
              step={1}
              aria-invalid={invalid}
              aria-describedby={d}
              value={form.port}
              onChange={(e) => set({ port: e.target.value })}
            />
          )}
        </Field>
        <Field label="Protocol" error={refused.of('protocol')}>
          {(id, d, invalid) => (
            <select
              id={id}
              aria-describedby={d}
              aria-invalid={invalid}
              className="rounded-md border border-slate-400 bg-white px-2 py-1.5 text-sm"
              value={form.protocol}
              onChange={(e) => set({ protocol: e.target.value as AccessTarget['protocol'] })}
            >
              {PROTOCOLS.map((p) => (
                <option key={p}>{p}</option>
              ))}
            </select>
          )}
        </Field>
      </div>
      <Field label="Description" hint="Optional." error={refused.of('description')}>
        {(id, d, invalid) => (
          <Input
            id={id}
            aria-invalid={invalid}
            aria-describedby={d}
            value={form.description}
            onChange={(e) => set({ description: e.target.value })}
          />
        )}
      </Field>
      <GatewayPicker
        {...picker}
        value={via}
        onChange={(v) => {
          setVia(v);
          save.reset();
        }}
        allowDirect={false}
        legend="Reach the target through"
        error={
          [refused.of('gatewayId'), refused.of('gatewayPoolId')].filter(Boolean).join('; ') ||
          undefined
        }
      />
      <ErrorText error={refused.rest} />
      <div className="flex flex-wrap gap-2">
        <Button
          type="submit"
          tone="primary"
          disabled={
            save.isPending ||
            via.kind === 'direct' ||
            via.kind === 'none' ||
            !!nameError ||
            !!portError
          }
          title={
            via.kind === 'direct' || via.kind === 'none' ? 'Choose a pool or a gateway.' : undefined
          }
        >
          {submitLabel}
        </Button>
        {onCancel && <Button onClick={onCancel}>Cancel</Button>}
      </div>
    </Form>
  );
}

export function AccessTargetsPage() {
  return (
    <PageGate title="Access targets" what="access targets" subject="AccessTarget" action="list">
      <AccessTargetsPageView />
    </PageGate>
  );
}

/**
 * A hint under "Through" when the target's pool has no healthy member (live health from the
 * pools list already loaded): `gatepool connect` would fail until one is healthy again.
 */
function ThroughHealth({ poolId }: { poolId: string | null }) {
  const license = useLicense();
  const { data: me } = useMe();
  const pools = usePools(hasPools(license) && permission(me, 'list', 'GatewayPool').allowed);
  const pool = poolId ? pools.data?.items.find((p) => p.id === poolId) : undefined;
  if (!pool || pool.healthyMemberCount > 0) return null;
  return (
    <p className="text-xs font-medium text-red-800" data-testid="through-health">
      {pool.memberCount ? 'No healthy member' : 'No members'}: connections fail until one is
      healthy.
    </p>
  );
}

function AccessTargetsPageView() {
  const qc = useQueryClient();
  const { data: me } = useMe();
  const targets = useQuery({
    queryKey: ['access-targets'],
    // Created elsewhere (a teammate, Terraform): shown within half a minute, and on return to the tab.
    refetchInterval: LIST_REFRESH_MS,
    refetchOnWindowFocus: true,
    queryFn: () =>
      allPages((cursor) =>
        unwrap<Page<AccessTarget>>(
          api.GET('/api/v1/access-targets', { params: { query: { cursor, limit: 200 } } }),
        ),
      ),
  });
  const remove = useMutation({
    mutationFn: (target: string) =>
      unwrap(api.DELETE('/api/v1/access-targets/{target}', { params: { path: { target } } })),
    onSettled: () => qc.invalidateQueries({ queryKey: ['access-targets'] }),
  });
  const [editing, setEditing] = useState<AccessTarget | null>(null);
  const [creating, setCreating] = useState(false);
  const [q, setQ] = useState('');
  const canCreate = permission(me, 'create', 'AccessTarget');
  const canEdit = permission(me, 'edit', 'AccessTarget');
  const canDelete = permission(me, 'delete', 'AccessTarget');
  const all = targets.data?.items ?? [];
  const shown = all.filter((t) =>
    matches(
      q,
      t.name,
      t.description,
      t.host,
      `${t.host}:${t.port}`,
      t.protocol,
      t.gatewayPool?.name,
      t.gateway?.name,
    ),
  );
  return (
    <div className="flex flex-col gap-4">
      <div className="flex flex-wrap items-center justify-between gap-4">
        <h1 className="text-2xl font-semibold">Access targets</h1>
        <Button
          tone="primary"
          disabledReason={canCreate.allowed ? undefined : canCreate.reason}
          onClick={() => setCreating(true)}
        >
          New access target
        </Button>
      </div>
      <Card title="Targets">
        {targets.isPending ? (
          <Loading what="access targets" />
        ) : targets.error ? (
          <ErrorText error={targets.error} />
        ) : !all.length ? (
          <Empty title="No access targets yet">
            A target names a host:port inside your network, reached through a pool or gateway.
          </Empty>
        ) : (
          <div className="flex flex-col gap-2">
            <div className="flex flex-wrap items-end gap-3">
              <SearchField label="Search targets" value={q} onChange={setQ} />
              <ListCount
                shown={shown.length}
                total={all.length}
                more={!!targets.data.nextCursor}
                noun="target"
              />
            </div>
            {!shown.length ? (
              <Empty title={`No target matches “${q}”`}>
                Search looks at names, descriptions, hosts, protocols and what a target goes
                through.
              </Empty>
            ) : (
              <TableScroll>
                <table className="w-full min-w-[40rem] text-left text-sm">
                  <TableHead
                    columns={['Name', 'Target', 'Through', 'Connect', '']}
                    cell="py-1 pr-2"
                  />
                  <tbody>
                    {shown.map((t) => (
                      <tr
                        key={t.id}
                        className="border-t border-slate-100 align-top"
                        data-target={t.name}
                      >
                        <td className="max-w-56 py-2 pr-2 font-medium break-all">
                          {t.name}
                          {t.description && (
                            <p
                              className="line-clamp-2 text-xs font-normal break-normal text-slate-600"
                              title={t.description}
                            >
                              {t.description}
                            </p>
                          )}
                        </td>
                        <td className="max-w-56 py-2 pr-2 font-mono text-xs break-all">
                          {t.protocol}://{t.host.includes(':') ? `[${t.host}]` : t.host}:{t.port}
                        </td>
                        <td className="py-2 pr-2 [overflow-wrap:anywhere]">
                          {t.gatewayPool
                            ? `pool ${t.gatewayPool.name}`
                            : t.gateway
                              ? `gateway ${t.gateway.name}`
                              : '—'}
                          <ThroughHealth poolId={t.gatewayPoolId} />
                        </td>
                        <td className="max-w-72 py-2 pr-2">
                          {t.canConnect ? (
                            <>
                              <code className="mr-2 inline-block rounded bg-slate-100 px-1.5 py-0.5 text-xs break-all">
                                gatepool connect {t.name}
                              </code>
                              <CopyButton text={`gatepool connect ${t.name}`} />
                            </>
                          ) : (
                            <span className="text-xs text-slate-600" data-testid="no-connect">
                              Your role may not connect to it.
                            </span>
                          )}
                        </td>
                        <td className="py-2">
                          <div className="flex gap-1">
                            <Button
                              small
                              disabledReason={canEdit.allowed ? undefined : canEdit.reason}
                              onClick={() => setEditing(t)}
                            >
                              Edit
                            </Button>
                            <ConfirmButton
                              label="Delete"
                              title={`Delete access target “${t.name}”?`}
                              body="Open connections end; new ones are refused."
                              typeToConfirm={t.name}
                              disabledReason={canDelete.allowed ? undefined : canDelete.reason}
                              onConfirm={() => remove.mutateAsync(t.id)}
                            />
                          </div>
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </TableScroll>
            )}
          </div>
        )}
      </Card>
      <FormDialog open={creating} onOpenChange={setCreating} title="New access target" wide>
        {creating && (
          <div className="mt-3">
            <TargetForm
              submitLabel="Create access target"
              onSaved={() => setCreating(false)}
              onCancel={() => setCreating(false)}
            />
          </div>
        )}
      </FormDialog>
      <FormDialog
        open={!!editing}
        onOpenChange={(o) => !o && setEditing(null)}
        title={editing ? `Edit access target “${editing.name}”` : 'Edit access target'}
        wide
      >
        {editing && (
          <div className="mt-3">
            <TargetForm
              key={editing.id}
              target={editing}
              submitLabel="Save access target"
              onSaved={() => setEditing(null)}
              onCancel={() => setEditing(null)}
            />
          </div>
        )}
      </FormDialog>
    </div>
  );
}
