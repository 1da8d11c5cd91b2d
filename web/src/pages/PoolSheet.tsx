import * as Popover from '@radix-ui/react-popover';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { Link } from '@tanstack/react-router';
import { useState } from 'react';
import { api, unwrap } from '../api/client';
import type {
  AuditEntry,
  ConnectedResources,
  Consumer,
  Page,
  Pool,
  PoolDetail,
  PoolMember,
} from '../api/types';
import { GatewayControls, InlineNumber } from '../components/GatewayControls';
import { ConfirmButton, Sheet } from '../components/Dialogs';
import { HealthBadge, PoolHealthBadge } from '../components/HealthBadge';
import {
  Button,
  Empty,
  ErrorText,
  Input,
  Loading,
  relativeTime,
  TableHead,
  TableScroll,
} from '../components/ui';
import { useResourceAudit } from '../lib/audit';
import { useGateways, useInfraMutation, usePool } from '../lib/queries';
import { permission, useMe } from '../lib/session';

export function PoolSheet({ poolId, onClose }: { poolId?: string; onClose: () => void }) {
  const pool = usePool(poolId);
  const { data: me } = useMe();
  const edit = permission(me, 'edit', 'GatewayPool');
  const p = pool.data;
  return (
    <Sheet
      open={!!poolId}
      onOpenChange={(o) => !o && onClose()}
      title={p ? `Pool “${p.name}”` : 'Pool'}
    >
      {pool.isPending ? (
        <Loading what="pool" />
      ) : pool.error ? (
        <ErrorText error={pool.error} />
      ) : (
        p && (
          <div className="flex flex-col gap-5">
            {p.description && (
              <p
                className="text-sm whitespace-pre-line text-slate-700 [overflow-wrap:anywhere]"
                data-testid="pool-description"
              >
                {p.description}
              </p>
            )}
            <dl className="grid grid-cols-2 gap-x-6 gap-y-2 text-sm">
              <dt className="text-slate-600">Health</dt>
              <dd>
                <PoolHealthBadge
                  health={p.health}
                  healthy={p.healthyMemberCount}
                  total={p.memberCount}
                  minHealthy={p.minHealthy}
                />
              </dd>
              <dt className="text-slate-600">Min healthy</dt>
              <dd>{p.minHealthy}</dd>
              <dt className="text-slate-600">Health-check target</dt>
              <dd className="font-mono text-xs">{p.healthCheckTarget ?? 'none'}</dd>
              <dt className="text-slate-600">Created</dt>
              <dd>{p.createdAt ? new Date(p.createdAt).toLocaleString() : '—'}</dd>
            </dl>
            <section aria-labelledby="members-title">
              <div className="mb-2 flex items-center justify-between">
                <h3 id="members-title" className="font-semibold">
                  Members
                </h3>
                <AddGateway
                  poolId={p.id}
                  memberIds={p.members.map((m) => m.id)}
                  disabledReason={edit.allowed ? undefined : edit.reason}
                />
              </div>
              {p.members.length ? (
                <TableScroll>
                  <table className="w-full text-left text-sm">
                    <TableHead
                      columns={['Gateway', 'Health', 'Weight', 'Priority', 'Actions']}
                      cell="py-1 pr-2"
                    />
                    <tbody>
                      {p.members.map((m) => (
                        <MemberRow
                          key={m.id}
                          poolId={p.id}
                          m={m}
                          editReason={edit.allowed ? undefined : edit.reason}
                        />
                      ))}
                    </tbody>
                  </table>
                </TableScroll>
              ) : (
                <Empty title="No members">Add gateways that reach the same network.</Empty>
              )}
            </section>
            <PoolAudit poolId={p.id} />
          </div>
        )
      )}
    </Sheet>
  );
}

function MemberRow({
  poolId,
  m,
  editReason,
}: {
  poolId: string;
  m: PoolMember;
  editReason?: string;
}) {
  const path = { params: { path: { poolId, gatewayId: m.id } } };
  const patch = useInfraMutation((body: { weight?: number; priority?: number }) =>
    unwrap(api.PATCH('/api/v1/gateway-pools/{poolId}/memberships/{gatewayId}', { ...path, body })),
  );
  const remove = useInfraMutation(() =>
    unwrap(api.DELETE('/api/v1/gateway-pools/{poolId}/memberships/{gatewayId}', path)),
  );
  // The reason, when it says more than the badge does.
  const reason = m.lastResort ?? m.healthReason;
  const why = reason && reason.toLowerCase() !== m.health ? reason : null;
  return (
    <tr className="border-t border-slate-100 align-top" data-member={m.name}>
      <td className="py-2 pr-2 font-medium [overflow-wrap:anywhere]">{m.name}</td>
      <td className="py-2 pr-2">
        <HealthBadge health={m.health} />
        {why && (
          <p className="mt-1 max-w-xs text-xs text-amber-800">
            {m.lastResort ? 'Last resort: ' : ''}
            {why}
          </p>
        )}
      </td>
      <td className="py-2 pr-2">
        <InlineNumber
          label={`Weight of ${m.name}`}
          value={m.weight}
          min={1}
          max={10_000}
          disabledReason={editReason}
          onCommit={(weight) => patch.mutateAsync({ weight })}
          onEdit={() => patch.reset()}
        />
      </td>
      <td className="py-2 pr-2">
        <InlineNumber
          label={`Priority of ${m.name}`}
          value={m.priority}
          min={0}
          max={100}
          disabledReason={editReason}
          onCommit={(priority) => patch.mutateAsync({ priority })}
          onEdit={() => patch.reset()}
        />
      </td>
      <td className="py-2">
        <GatewayControls
          gatewayId={m.id}
          gatewayName={m.name}
          draining={m.draining}
          checkLabel="Trigger health check"
          drainDisabledReason={editReason}
          health={m.health}
          extra={
            <ConfirmButton
              label="Remove"
              confirmLabel="Remove"
              title={`Remove “${m.name}” from the pool?`}
              body="The gateway stays enrolled; the pool stops sending it traffic."
              disabledReason={editReason}
              onConfirm={() => remove.mutateAsync()}
            />
          }
        />
      </td>
    </tr>
  );
}

function AddGateway({
  poolId,
  memberIds,
  disabledReason,
}: {
  poolId: string;
  memberIds: string[];
  disabledReason?: string;
}) {
  const [open, setOpen] = useState(false);
  const [q, setQ] = useState('');
  const gateways = useGateways();
  const add = useInfraMutation((gatewayId: string) =>
    unwrap(
      api.POST('/api/v1/gateway-pools/{poolId}/memberships', {
        params: { path: { poolId } },
        body: { gatewayId },
      }),
    ),
  );
  const candidates = (gateways.data?.items ?? []).filter(
    (g) => !memberIds.includes(g.id) && g.name.toLowerCase().includes(q.trim().toLowerCase()),
  );
  return (
    <div className="flex flex-col items-end">
      <Popover.Root open={open} onOpenChange={setOpen}>
        <Popover.Trigger asChild>
          <Button small tone="primary" disabledReason={disabledReason}>
            Add gateway
          </Button>
        </Popover.Trigger>
        <Popover.Portal>
          <Popover.Content
            aria-label="Add a gateway to the pool"
            align="end"
            sideOffset={4}
            className="z-50 w-72 rounded-md border border-slate-200 bg-white p-2 shadow-lg"
          >
            <Input
              aria-label="Search gateways"
              placeholder="Search gateways"
              className="w-full"
              value={q}
              onChange={(e) => setQ(e.target.value)}
            />
            <ul className="mt-2 max-h-60 overflow-y-auto" aria-label="Gateways not in this pool">
              {gateways.isPending && <li className="p-2 text-sm text-slate-600">Loading…</li>}
              {!gateways.isPending && !candidates.length && (
                <li className="p-2 text-sm text-slate-600">
                  {q.trim()
                    ? `No gateway outside this pool matches “${q.trim()}”.`
                    : gateways.data?.items.length
                      ? 'Every gateway is already a member.'
                      : 'No gateways are enrolled yet.'}
                </li>
              )}
              {candidates.map((g) => (
                <li key={g.id}>
                  <button
                    type="button"
                    className="flex w-full items-center justify-between rounded px-2 py-1.5 text-left text-sm hover:bg-slate-100 focus:bg-slate-100 focus:outline-none"
                    onClick={() => {
                      add.mutate(g.id);
                      setOpen(false);
                      setQ('');
                    }}
                  >
                    {g.name}
                    <HealthBadge health={g.health} />
                  </button>
                </li>
              ))}
            </ul>
          </Popover.Content>
        </Popover.Portal>
      </Popover.Root>
      <ErrorText error={add.error} />
    </div>
  );
}

function PoolAudit({ poolId }: { poolId: string }) {
  const { data: me } = useMe();
  const can = permission(me, 'read', 'AuditLog');
  const audit = useResourceAudit(['audit', 'pool', poolId], { poolId }, can.allowed);
  const items = audit.data?.pages.flatMap((p) => p.items) ?? [];
  return (
    <section aria-labelledby="pool-audit-title">
      <h3 id="pool-audit-title" className="mb-2 font-semibold">
        Audit trail
      </h3>
      {!can.allowed ? (
        <p className="text-sm text-slate-600">{can.reason}</p>
      ) : audit.isPending ? (
        <Loading what="audit trail" />
      ) : audit.error ? (
        <ErrorText error={audit.error} />
      ) : !items.length ? (
        <p className="text-sm text-slate-600">Nothing recorded for this pool yet.</p>
      ) : (
        <AuditTrail items={items} />
      )}
      {audit.hasNextPage && (
        <Button
          small
          className="mt-2"
          disabled={audit.isFetchingNextPage}
          onClick={() => void audit.fetchNextPage()}
        >
          {audit.isFetchingNextPage ? 'Loading…' : 'Show older'}
        </Button>
      )}
    </section>
  );
}

/** Entries of a resource's history: event, who, when, and the reason or pools left if any. */
export function AuditTrail({ items }: { items: AuditEntry[] }) {
  return (
    <ul className="flex flex-col gap-1 text-sm" data-testid="audit-trail">
      {items.map((e) => {
        const left = Array.isArray(e.metadata.leftPools)
          ? (e.metadata.leftPools as { name?: string }[]).flatMap((p) => (p.name ? [p.name] : []))
          : [];
        return (
          <li key={e.id}>
            <span className="font-mono text-xs">{e.event}</span> by {e.actor.name ?? e.actor.type}
            {typeof e.metadata.name === 'string' && e.event.startsWith('gateway.delete')
              ? ` (gateway “${e.metadata.name}”)`
              : ''}
            {typeof e.metadata.reason === 'string' && (
              <span className="text-slate-600"> ({e.metadata.reason})</span>
            )}
            {left.length > 0 && (
              <span className="text-slate-600"> · left pool {left.join(', ')}</span>
            )}{' '}
            ·{' '}
            <time dateTime={e.createdAt} title={new Date(e.createdAt).toLocaleString()}>
              {relativeTime(e.createdAt)}
            </time>
          </li>
        );
      })}
    </ul>
  );
}

const KIND_LABEL: Record<string, string> = {
  'kubernetes-auth': 'Kubernetes auth',
  'access-target': 'Access targets',
};

function groupConsumers(list: Consumer[]): Map<string, Consumer[]> {
  const groups = new Map<string, Consumer[]>();
  for (const c of list) groups.set(c.kind, [...(groups.get(c.kind) ?? []), c]);
  return groups;
}

export function ResourcesDrawer({ poolId, onClose }: { poolId?: string; onClose: () => void }) {
  // The pool's name, from the list or the sheet already loaded (no request of its own).
  const qc = useQueryClient();
  const name =
    qc.getQueryData<Page<Pool>>(['pools'])?.items.find((p) => p.id === poolId)?.name ??
    qc.getQueryData<PoolDetail>(['pool', poolId])?.name;
  const resources = useQuery({
    queryKey: ['pool', poolId, 'resources'],
    queryFn: () =>
      unwrap<ConnectedResources>(
        api.GET('/api/v1/gateway-pools/{poolId}/resources', {
          params: { path: { poolId: poolId ?? '' } },
        }),
      ),
    enabled: !!poolId,
  });
  const groups = groupConsumers(resources.data?.items ?? []);
  const hidden = resources.data?.hidden ?? 0;
  return (
    <Sheet
      open={!!poolId}
      onOpenChange={(o) => !o && onClose()}
      title={name ? `Connected resources of pool “${name}”` : 'Connected resources'}
      description="What uses this pool, by kind."
    >
      {resources.isPending ? (
        <Loading what="connected resources" />
      ) : resources.error ? (
        <ErrorText error={resources.error} />
      ) : !groups.size && !hidden ? (
        <Empty title="Nothing uses this pool yet" />
      ) : (
        <>
          {[...groups].map(([kind, list]) => (
            <section key={kind} className="mb-4">
              <h3 className="mb-1 font-semibold">{KIND_LABEL[kind] ?? kind}</h3>
              <ul className="flex flex-col gap-1 text-sm">
                {list.map((c) => (
                  <li key={c.id}>
                    {kind.startsWith('kubernetes') ? (
                      <Link
                        to="/identities/$id"
                        params={{ id: c.id }}
                        className="text-indigo-800 underline"
                      >
                        {c.name}
                      </Link>
                    ) : kind.startsWith('access') ? (
                      <Link to="/access-targets" className="text-indigo-800 underline">
                        {c.name}
                      </Link>
                    ) : (
                      c.name
                    )}
                  </li>
                ))}
              </ul>
            </section>
          ))}
          {hidden > 0 && (
            <p className="text-sm text-slate-600">
              {hidden === 1
                ? '1 more resource uses this pool that your role may not see.'
                : `${hidden} more resources use this pool that your role may not see.`}
            </p>
          )}
        </>
      )}
    </Sheet>
  );
}
