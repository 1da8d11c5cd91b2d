import * as ToggleGroup from '@radix-ui/react-toggle-group';
import { Link, useNavigate, useSearch } from '@tanstack/react-router';
import { useState } from 'react';
import { api, unwrap } from '../api/client';
import type { Gateway, Pool } from '../api/types';
import { GatewayControls, PoolImpact } from '../components/GatewayControls';
import { ConfirmButton, FormDialog } from '../components/Dialogs';
import { HealthBadge, PoolHealthBadge } from '../components/HealthBadge';
import {
  Button,
  CopyButton,
  Empty,
  ErrorText,
  Field,
  Form,
  Input,
  ListCount,
  Loading,
  matches,
  relativeTime,
  SearchField,
  splitFieldErrors,
  TableHead,
  TextArea,
} from '../components/ui';
import { useGateways, useInfraMutation, usePools, usePoolsOfGateways } from '../lib/queries';
import { warningNotices } from '../lib/notices';
import { hasPools, permission, useLicense, useMe } from '../lib/session';
import { PoolSheet, ResourcesDrawer } from './PoolSheet';

export interface GatewaysSearch {
  view?: 'gateways' | 'pools';
  pool?: string;
  resources?: string;
}

export function GatewaysPage() {
  const search: GatewaysSearch = useSearch({ strict: false });
  const navigate = useNavigate();
  const view = search.view ?? 'gateways';
  const set = (next: GatewaysSearch) =>
    void navigate({ to: '/gateways', search: { ...search, ...next } });
  return (
    <div className="flex flex-col gap-4">
      <div className="flex flex-wrap items-center justify-between gap-4">
        <h1 className="text-2xl font-semibold">Gateways</h1>
        <ToggleGroup.Root
          type="single"
          value={view}
          onValueChange={(v) => v && set({ view: v as 'gateways' | 'pools' })}
          aria-label="Show gateways or pools"
          className="inline-flex rounded-md border border-slate-300 bg-white p-0.5"
        >
          {(['gateways', 'pools'] as const).map((v) => (
            <ToggleGroup.Item
              key={v}
              value={v}
              className="rounded px-3 py-1 text-sm text-slate-800 focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-600 data-[state=on]:bg-indigo-700 data-[state=on]:text-white"
            >
              {v === 'gateways' ? 'Gateways' : 'Pools'}
            </ToggleGroup.Item>
          ))}
        </ToggleGroup.Root>
      </div>
      {view === 'gateways' ? (
        <GatewaysTable onOpenPool={(id) => set({ pool: id })} />
      ) : (
        <PoolsView set={set} />
      )}
      <PoolSheet poolId={search.pool} onClose={() => set({ pool: undefined })} />
      <ResourcesDrawer poolId={search.resources} onClose={() => set({ resources: undefined })} />
    </div>
  );
}

function GatewaysTable({ onOpenPool }: { onOpenPool: (id: string) => void }) {
  const gateways = useGateways();
  const { data: me } = useMe();
  const license = useLicense();
  const poolsOf = usePoolsOfGateways(hasPools(license));
  const [q, setQ] = useState('');
  const read = permission(me, 'read', 'Gateway');
  if (me && !read.allowed)
    return <Empty title="You don't have access to gateways">{read.reason}</Empty>;
  if (gateways.isPending) return <Loading what="gateways" />;
  if (gateways.error) return <ErrorText error={gateways.error} />;
  if (!gateways.data.items.length) {
    return (
      <Empty title="No gateways yet">
        Create an{' '}
        <Link to="/enrollment-tokens" className="text-indigo-700 underline">
          enrollment token
        </Link>{' '}
        and run the command it shows on a host inside your network.
      </Empty>
    );
  }
  const all = gateways.data.items.map((g) => ({ ...g, pools: g.pools ?? poolsOf.get(g.id) }));
  // Name, health ("unreachable"), a label's key or value, or a pool the gateway is in.
  const items = all.filter((g) =>
    matches(
      q,
      g.name,
      g.health,
      ...Object.entries(g.labels ?? {}).map(([k, v]) => `${k}=${v}`),
      ...(g.pools ?? []).map((p) => p.name),
    ),
  );
  return (
    <div className="flex flex-col gap-2">
      <div className="flex flex-wrap items-end justify-between gap-2">
        <SearchField label="Search gateways" value={q} onChange={setQ} />
        <ListCount
          shown={items.length}
          total={all.length}
          more={!!gateways.data.nextCursor}
          noun="gateway"
        />
      </div>
      {!items.length ? (
        <Empty title={`No gateway matches “${q}”`}>
          Search looks at names, health, labels (key=value) and pools.
        </Empty>
      ) : (
        <div
          className="relative overflow-x-auto rounded-lg border border-slate-200 bg-white"
          data-testid="gateways-table"
        >
          <table className="w-full text-left text-sm">
            <TableHead columns={GATEWAY_COLUMNS} cell="px-2 py-2 whitespace-nowrap" />
            <tbody>
              {items.map((g) => (
                <GatewayRow key={g.id} g={g} me={me} onOpenPool={onOpenPool} />
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}

/**
 * Which columns a width has room for, so a row stays on one line: name, health and the
 * actions always; last seen and pools from 1024 px; RTT and labels from 1280 px; streams,
 * version and resources from 1536 px (the gateway's page has them all). Long values are cut
 * with an ellipsis and shown whole as the cell's title.
 */
const LG = 'hidden lg:table-cell';
const XL = 'hidden xl:table-cell';
const XXL = 'hidden 2xl:table-cell';
const GATEWAY_COLUMNS = [
  'Name',
  'Health',
  { label: 'Last seen', className: LG },
  { label: 'RTT', className: XL },
  { label: 'Streams', className: XXL },
  { label: 'Version', className: XXL },
  { label: 'Labels', className: XL },
  { label: 'Pools', className: LG },
  { label: 'Resources', className: XXL },
  '',
];

function GatewayRow({
  g,
  me,
  onOpenPool,
}: {
  g: Gateway;
  me: ReturnType<typeof useMe>['data'];
  onOpenPool: (id: string) => void;
}) {
  const edit = permission(me, 'edit', 'Gateway');
  const del = permission(me, 'delete', 'Gateway');
  const remove = useInfraMutation(() =>
    unwrap<{ warnings?: string[] }>(
      api.DELETE('/api/v1/gateways/{id}', { params: { path: { id: g.id } } }),
    ),
  );
  const labels = Object.entries(g.labels ?? {}).map(([k, v]) => `${k}=${v}`);
  const pools = g.pools ?? [];
  const cell = 'px-2 py-2 whitespace-nowrap';
  return (
    <tr className="border-t border-slate-100 align-middle" data-gateway={g.name}>
      <td className={`${cell} font-medium`}>
        <Link
          to="/gateways/$id"
          params={{ id: g.id }}
          title={g.name}
          className="block max-w-[9rem] truncate text-indigo-800 hover:underline 2xl:max-w-[14rem]"
        >
          {g.name}
        </Link>
      </td>
      <td className={cell}>
        <HealthBadge health={g.health} title={g.lastResort} />
        {g.lastResort && (
          <p className="mt-1 max-w-[10rem] truncate text-xs text-amber-800" title={g.lastResort}>
            Last resort: {g.lastResort}
          </p>
        )}
      </td>
      <td className={`${cell} ${LG}`}>
        {g.lastSeenAt ? (
          <time dateTime={g.lastSeenAt} title={new Date(g.lastSeenAt).toLocaleString()}>
            {relativeTime(g.lastSeenAt)}
          </time>
        ) : (
          relativeTime(g.lastSeenAt)
        )}
      </td>
      <td className={`${cell} ${XL}`}>{g.rttMs !== null ? `${g.rttMs.toFixed(1)} ms` : '—'}</td>
      <td className={`${cell} ${XXL}`}>{g.activeStreams}</td>
      <td className={`${cell} ${XXL}`}>
        <span className="block max-w-[7rem] truncate" title={g.version ?? undefined}>
          {g.version ?? '—'}
        </span>
      </td>
      <td className={`${cell} ${XL}`}>
        {labels.length ? (
          <span className="block max-w-[9rem] truncate font-mono text-xs" title={labels.join(', ')}>
            {labels.join(', ')}
          </span>
        ) : (
          '—'
        )}
      </td>
      <td className={`${cell} ${LG}`}>
        {pools.length ? (
          <span className="block max-w-[8rem] truncate" title={pools.map((p) => p.name).join(', ')}>
            {pools.map((p, i) => (
              <span key={p.id}>
                {i > 0 && ', '}
                <button
                  type="button"
                  className="inline text-indigo-800 underline"
                  onClick={() => onOpenPool(p.id)}
                >
                  {p.name}
                </button>
              </span>
            ))}
          </span>
        ) : (
          '—'
        )}
      </td>
      <td className={`${cell} ${XXL}`}>{g.connectedResourcesCount ?? '—'}</td>
      <td className={cell}>
        <GatewayControls
          gatewayId={g.id}
          gatewayName={g.name}
          draining={g.draining}
          health={g.health}
          nowrap
          drainDisabledReason={edit.allowed ? undefined : edit.reason}
          extra={
            <>
              <CopyButton text={g.id} label="Copy ID" />
              <ConfirmButton
                label="Delete"
                title={`Delete gateway “${g.name}”?`}
                body={
                  <div className="flex flex-col gap-2">
                    <p>Its tunnel drops at once and its certificate is refused from then on.</p>
                    {g.connectedResourcesCount > 0 && (
                      <p className="font-medium text-red-800" data-impact="direct">
                        {g.connectedResourcesCount === 1
                          ? '1 resource is attached to it directly'
                          : `${g.connectedResourcesCount} resources are attached to it directly`}
                        : detach them first, the platform refuses to delete a gateway in use.
                      </p>
                    )}
                    <PoolImpact gatewayId={g.id} verb="deleting" />
                  </div>
                }
                typeToConfirm={g.name}
                disabledReason={del.allowed ? undefined : del.reason}
                // The platform's warnings (e.g. a pool left with no healthy member) outlive the row.
                onConfirm={() => remove.mutateAsync().then((r) => warningNotices.add(r.warnings))}
              />
            </>
          }
        />
      </td>
    </tr>
  );
}

export function UpgradeCard({ what = 'Gateway pools' }: { what?: string }) {
  return (
    <section
      className="rounded-lg border border-indigo-200 bg-indigo-50 p-6"
      aria-labelledby="upgrade-title"
    >
      <h2 id="upgrade-title" className="text-lg font-semibold text-indigo-900">
        Upgrade to Enterprise
      </h2>
      <p className="mt-2 max-w-2xl text-sm text-indigo-950">
        {what} are part of the Enterprise plan. A pool groups gateways that reach the same network:
        whatever uses it gets a healthy member for every request and moves to another member within
        a second when one dies, so one gateway going down never takes your access with it.
      </p>
      <p className="mt-3 text-sm">
        <Link to="/settings" className="font-medium text-indigo-800 underline">
          Install a license key
        </Link>{' '}
        to enable pools.
      </p>
    </section>
  );
}

const POOL_NAME = /^[a-z0-9-]{1,32}$/;

function PoolsView({ set }: { set: (s: GatewaysSearch) => void }) {
  const license = useLicense();
  const licensed = hasPools(license);
  const pools = usePools(licensed);
  const { data: me } = useMe();
  const [q, setQ] = useState('');
  const [creating, setCreating] = useState(false);
  const list = permission(me, 'list', 'GatewayPool');
  if (me && !list.allowed)
    return <Empty title="You don't have access to gateway pools">{list.reason}</Empty>;
  if (license.isPending) return <Loading what="plan" />;
  if (!licensed) return <UpgradeCard />;
  if (pools.isPending) return <Loading what="pools" />;
  if (pools.error) return <ErrorText error={pools.error} />;
  const create = permission(me, 'create', 'GatewayPool');
  const items = pools.data.items.filter((p) => matches(q, p.name));
  return (
    <div className="flex flex-col gap-3">
      <div className="flex flex-wrap items-end justify-between gap-2">
        <div className="flex flex-wrap items-end gap-3">
          <SearchField label="Search pools" value={q} onChange={setQ} />
          <ListCount
            shown={items.length}
            total={pools.data.items.length}
            more={!!pools.data.nextCursor}
            noun="pool"
          />
        </div>
        <Button
          tone="primary"
          disabledReason={create.allowed ? undefined : create.reason}
          onClick={() => setCreating(true)}
        >
          Create pool
        </Button>
      </div>
      {!pools.data.items.length ? (
        <Empty title="No pools yet">
          Create a pool, then add gateways that reach the same network.
        </Empty>
      ) : !items.length ? (
        <Empty title={`No pool matches “${q}”`} />
      ) : (
        <div className="relative overflow-x-auto rounded-lg border border-slate-200 bg-white">
          <table className="w-full min-w-[36rem] text-left text-sm">
            <thead className="bg-slate-50 text-xs text-slate-700 uppercase">
              <tr>
                {['Name', 'Health', 'Min healthy', 'Health check', 'Resources', 'Actions'].map(
                  (h) => (
                    <th key={h} scope="col" className="px-3 py-2 font-semibold">
                      {h}
                    </th>
                  ),
                )}
              </tr>
            </thead>
            <tbody>
              {items.map((p) => (
                <PoolRow key={p.id} p={p} pools={pools.data.items} me={me} set={set} />
              ))}
            </tbody>
          </table>
        </div>
      )}
      <PoolFormDialog open={creating} onOpenChange={setCreating} pools={pools.data.items} />
    </div>
  );
}

function PoolRow({
  p,
  pools,
  me,
  set,
}: {
  p: Pool;
  pools: Pool[];
  me: ReturnType<typeof useMe>['data'];
  set: (s: GatewaysSearch) => void;
}) {
  const [editing, setEditing] = useState(false);
  const edit = permission(me, 'edit', 'GatewayPool');
  const del = permission(me, 'delete', 'GatewayPool');
  const remove = useInfraMutation(() =>
    unwrap(api.DELETE('/api/v1/gateway-pools/{poolId}', { params: { path: { poolId: p.id } } })),
  );
  return (
    <tr className="border-t border-slate-100" data-pool={p.name}>
      <td className="max-w-56 px-3 py-2 font-medium break-all">
        <button
          type="button"
          className="text-left text-indigo-800 hover:underline"
          onClick={() => set({ pool: p.id })}
        >
          {p.name}
        </button>
        {p.description && (
          <p
            className="line-clamp-2 text-xs font-normal break-normal text-slate-600"
            title={p.description}
          >
            {p.description}
          </p>
        )}
      </td>
      <td className="px-3 py-2">
        <PoolHealthBadge
          health={p.health}
          healthy={p.healthyMemberCount}
          total={p.memberCount}
          minHealthy={p.minHealthy}
        />
      </td>
      <td className="px-3 py-2">{p.minHealthy}</td>
      <td className="px-3 py-2 font-mono text-xs">{p.healthCheckTarget ?? '—'}</td>
      <td className="px-3 py-2">
        <button
          type="button"
          className="text-indigo-800 underline"
          onClick={() => set({ resources: p.id })}
        >
          {p.connectedResourcesCount} connected
        </button>
      </td>
      <td className="px-3 py-2">
        <div className="flex gap-1">
          <Button
            small
            disabledReason={edit.allowed ? undefined : edit.reason}
            onClick={() => setEditing(true)}
          >
            Edit
          </Button>
          <ConfirmButton
            label="Delete"
            title={`Delete pool “${p.name}”?`}
            body={
              p.memberCount
                ? `Its ${p.memberCount === 1 ? 'member leaves' : `${p.memberCount} members leave`} the pool (the gateways stay). This cannot be undone.`
                : 'Nothing uses it and it has no members.'
            }
            // In use: say so up front (the platform refuses it) rather than offer, confirm, 409.
            disabledReason={
              !del.allowed
                ? del.reason
                : p.connectedResourcesCount
                  ? `In use by ${p.connectedResourcesCount} ${p.connectedResourcesCount === 1 ? 'resource' : 'resources'}: detach ${p.connectedResourcesCount === 1 ? 'it' : 'them'} first (see “${p.connectedResourcesCount} connected”).`
                  : undefined
            }
            onConfirm={() => remove.mutateAsync()}
          />
        </div>
        <PoolFormDialog open={editing} onOpenChange={setEditing} pools={pools} pool={p} />
      </td>
    </tr>
  );
}

export function PoolFormDialog({
  open,
  onOpenChange,
  pools,
  pool,
}: {
  open: boolean;
  onOpenChange: (o: boolean) => void;
  /** The org's pools, for the name-uniqueness check. */
  pools: Pick<Pool, 'id' | 'name'>[];
  pool?: Pick<Pool, 'id' | 'name' | 'minHealthy' | 'healthCheckTarget'>;
}) {
  return (
    <FormDialog
      open={open}
      onOpenChange={onOpenChange}
      title={pool ? `Edit pool “${pool.name}”` : 'Create pool'}
    >
      {/* Mounted only while open: every opening starts from the saved values, no old error. */}
      <PoolForm pools={pools} pool={pool} onDone={() => onOpenChange(false)} />
    </FormDialog>
  );
}

function PoolForm({
  pools,
  pool,
  onDone,
}: {
  pools: Pick<Pool, 'id' | 'name'>[];
  pool?: Pick<Pool, 'id' | 'name' | 'minHealthy' | 'healthCheckTarget'> & {
    description?: string;
  };
  onDone: () => void;
}) {
  const [name, setName] = useState(pool?.name ?? '');
  const [description, setDescription] = useState(pool?.description ?? '');
  const [minHealthy, setMinHealthy] = useState(String(pool?.minHealthy ?? 1));
  const [target, setTarget] = useState(pool?.healthCheckTarget ?? '');
  const save = useInfraMutation(() => {
    // An empty "Min healthy" means the platform's default (creating) or unchanged (editing).
    const body = {
      name,
      // Sent when typed or changed: an untouched empty one is the platform's default.
      ...(description.trim() !== (pool?.description ?? '').trim()
        ? { description: description.trim() }
        : {}),
      ...(minHealthy.trim() === '' ? {} : { minHealthy: Number(minHealthy) }),
      healthCheckTarget: target.trim() || null,
    };
    return pool
      ? unwrap<{ warnings?: string[] }>(
          api.PATCH('/api/v1/gateway-pools/{poolId}', {
            params: { path: { poolId: pool.id } },
            body,
          }),
        )
      : unwrap<{ warnings?: string[] }>(api.POST('/api/v1/gateway-pools', { body }));
  });
  const refused = splitFieldErrors(save.error, [
    'name',
    'description',
    'minHealthy',
    'healthCheckTarget',
  ]);
  const nameError = !name
    ? refused.of('name')
    : !POOL_NAME.test(name)
      ? 'Use 1-32 lowercase letters, digits and hyphens (e.g. "dc1-pool").'
      : pools.some((p) => p.name === name && p.id !== pool?.id)
        ? `A pool named "${name}" already exists.`
        : refused.of('name');
  return (
    <Form
      className="mt-3 flex flex-col gap-3"
      onSubmit={() =>
        save.mutateAsync(undefined, {
          onSuccess: (saved) => {
            // E.g. a health-check target no member can reach: the pool is down now, say so.
            warningNotices.add(saved.warnings);
            onDone();
          },
        })
      }
      // Editing again makes the last refusal stale.
      onChange={() => save.reset()}
    >
      <Field label="Name" error={nameError}>
        {(id, d, invalid) => (
          <Input
            id={id}
            required
            value={name}
            aria-invalid={invalid}
            aria-describedby={d}
            onChange={(e) => setName(e.target.value)}
          />
        )}
      </Field>
      <Field
        label="Description"
        hint="What this pool is for (optional, up to 1000 characters)."
        error={refused.of('description')}
      >
        {(id, d, invalid) => (
          <TextArea
            id={id}
            rows={2}
            maxLength={1000}
            value={description}
            aria-invalid={invalid}
            aria-describedby={d}
            onChange={(e) => setDescription(e.target.value)}
          />
        )}
      </Field>
      <Field
        label="Min healthy"
        hint={
          pool
            ? 'Below this many healthy members the pool is degraded (audited). Empty keeps it.'
            : 'Below this many healthy members the pool is degraded (audited). Empty means 1.'
        }
        error={refused.of('minHealthy')}
      >
        {(id, d, invalid) => (
          <Input
            id={id}
            type="number"
            min={0}
            value={minHealthy}
            aria-invalid={invalid}
            aria-describedby={d}
            onChange={(e) => setMinHealthy(e.target.value)}
          />
        )}
      </Field>
      <Field
        label="Health-check target"
        hint="host:port every member must reach, e.g. 10.0.0.5:5432 (optional)."
        error={refused.of('healthCheckTarget')}
      >
        {(id, d, invalid) => (
          <Input
            id={id}
            value={target}
            aria-invalid={invalid}
            aria-describedby={d}
            onChange={(e) => setTarget(e.target.value)}
          />
        )}
      </Field>
      <ErrorText error={refused.rest} />
      <div className="flex justify-end gap-2">
        <Button onClick={onDone}>Cancel</Button>
        <Button type="submit" tone="primary" disabled={!name || !!nameError || save.isPending}>
          {pool ? 'Save' : 'Create pool'}
        </Button>
      </div>
    </Form>
  );
}
