import { useQueryClient } from '@tanstack/react-query';
import { Link, useParams } from '@tanstack/react-router';
import { useEffect, useRef } from 'react';
import { GatewayControls } from '../components/GatewayControls';
import { HealthBadge } from '../components/HealthBadge';
import { PageGate } from '../components/PageGate';
import { Button, Card, ErrorText, LoadError, Loading, relativeTime } from '../components/ui';
import { useResourceAudit } from '../lib/audit';
import { AUDIT_REFRESH_MS } from '../lib/live';
import { byName, useGateway, usePoolMembership, usePoolsOfGateways } from '../lib/queries';
import { AuditTrail } from './PoolSheet';
import { hasPools, permission, useLicense, useMe } from '../lib/session';

export function GatewayDetailPage() {
  return (
    <PageGate title="Gateway" what="gateways" subject="Gateway">
      <GatewayDetailView />
    </PageGate>
  );
}

function GatewayDetailView() {
  const { id } = useParams({ strict: false }) as { id: string };
  const gw = useGateway(id);
  const { data: me } = useMe();
  const license = useLicense();
  const poolsOf = usePoolsOfGateways(hasPools(license));
  const canAudit = permission(me, 'read', 'AuditLog');
  const edit = permission(me, 'edit', 'Gateway');
  const membership = usePoolMembership(hasPools(license));
  // The route takes an id or a name; the history filter needs the id.
  const gatewayId = gw.data?.id;
  const history = useResourceAudit(
    ['audit', 'gateway', gatewayId ?? id],
    { gatewayId: gatewayId ?? '' },
    canAudit.allowed && !!gatewayId,
  );
  // Live health changed (connected, disconnected, drained): what only a refetch says (connected
  // since, address, the disconnect's reason in the history) follows at once, not on reload.
  const qc = useQueryClient();
  const health = gw.data?.health;
  const seen = useRef(health);
  useEffect(() => {
    if (seen.current === health) return;
    const first = seen.current === undefined;
    seen.current = health;
    if (first) return;
    void qc.invalidateQueries({ queryKey: ['gateway', id], exact: true });
    // The entry is written as the health changes: ask a moment later.
    const t = setTimeout(
      () => void qc.invalidateQueries({ queryKey: ['audit', 'gateway', gatewayId ?? id] }),
      AUDIT_REFRESH_MS,
    );
    return () => clearTimeout(t);
  }, [health, id, gatewayId, qc]);
  if (gw.isPending) return <Loading what="gateway" />;
  if (gw.error)
    return (
      <LoadError
        error={gw.error}
        what="Gateway"
        back={{ to: '/gateways', label: 'All gateways' }}
      />
    );
  const g = gw.data;
  const events = history.data?.pages.flatMap((p) => p.items) ?? [];
  // Why it is away, from its newest connection event (newest first), while it is.
  const newestConn = events.find(
    (e) => e.event.startsWith('gateway.') && /connected$/.test(e.event),
  );
  const lastDrop =
    g.health === 'unreachable' &&
    newestConn?.event === 'gateway.disconnected' &&
    typeof newestConn.metadata.reason === 'string'
      ? { reason: newestConn.metadata.reason, at: newestConn.createdAt }
      : null;
  const viaPools = membership.pools
    .filter((p) => p.connectedResourcesCount > 0 && p.members.some((m) => m.id === g.id))
    .sort((a, b) => byName(a.name, b.name));
  const rows: [string, React.ReactNode][] = [
    [
      'Health',
      <span key="h" className="inline-flex flex-wrap items-center gap-2">
        <HealthBadge health={g.health} />
        {lastDrop && (
          // A clean shutdown and a crash both read "Unreachable": the reason tells them apart.
          <span className="text-xs text-slate-600" data-testid="last-disconnect">
            {lastDrop.reason} · {relativeTime(lastDrop.at)}
          </span>
        )}
      </span>,
    ],
    ['Last resort', g.lastResort ?? 'no'],
    ['Last seen', relativeTime(g.lastSeenAt)],
    ['Connected since', g.connectedSince ? new Date(g.connectedSince).toLocaleString() : '—'],
    ['RTT', g.rttMs !== null ? `${g.rttMs.toFixed(1)} ms` : '—'],
    ['Active streams', g.activeStreams],
    ['Version', g.version ?? '—'],
    ['Address', g.remoteAddress ?? '—'],
    [
      'Labels',
      Object.entries(g.labels ?? {})
        .map(([k, v]) => `${k}=${v}`)
        .join(', ') || '—',
    ],
    ['Pools', (poolsOf.get(g.id) ?? []).map((p) => p.name).join(', ') || '—'],
    [
      'Connected resources',
      <ConnectedResources key="r" direct={g.connectedResourcesCount} via={viaPools} />,
    ],
    ['ID', <code key="id">{g.id}</code>],
  ];
  return (
    <div className="flex flex-col gap-4">
      <p className="text-sm [overflow-wrap:anywhere]">
        <Link to="/gateways" className="text-indigo-800 underline">
          Gateways
        </Link>{' '}
        / {g.name}
      </p>
      <div className="flex flex-wrap items-start justify-between gap-3">
        <h1 className="min-w-0 text-2xl font-semibold [overflow-wrap:anywhere]">{g.name}</h1>
        <div>
          <GatewayControls
            gatewayId={g.id}
            gatewayName={g.name}
            draining={g.draining}
            health={g.health}
            drainDisabledReason={edit.allowed ? undefined : edit.reason}
          />
        </div>
      </div>
      <Card>
        <dl className="grid grid-cols-[minmax(0,8rem)_minmax(0,1fr)] gap-x-2 gap-y-2 text-sm sm:grid-cols-[12rem_minmax(0,1fr)]">
          {rows.map(([k, v]) => (
            <div key={k} className="contents">
              <dt className="text-slate-600">{k}</dt>
              <dd className="min-w-0 [overflow-wrap:anywhere]">{v}</dd>
            </div>
          ))}
        </dl>
      </Card>
      <Card title="History">
        {!canAudit.allowed ? (
          <p className="text-sm text-slate-600">{canAudit.reason}</p>
        ) : history.isPending ? (
          <Loading what="history" />
        ) : history.error ? (
          <ErrorText error={history.error} />
        ) : !events.length ? (
          <p className="text-sm text-slate-600">Nothing recorded for this gateway yet.</p>
        ) : (
          <AuditTrail items={events} />
        )}
        {history.hasNextPage && (
          <Button
            small
            className="mt-2"
            disabled={history.isFetchingNextPage}
            onClick={() => void history.fetchNextPage()}
          >
            {history.isFetchingNextPage ? 'Loading…' : 'Show older'}
          </Button>
        )}
      </Card>
    </div>
  );
}

/** Resources attached directly, and those that reach the network through its pools. */
function ConnectedResources({
  direct,
  via,
}: {
  direct: number;
  via: { id: string; name: string; connectedResourcesCount: number }[];
}) {
  if (!via.length) return <>{direct}</>;
  return (
    <span data-testid="connected-resources">
      {direct} direct
      {via.map((p) => (
        <span key={p.id}>
          {' · '}
          {p.connectedResourcesCount} via pool{' '}
          <Link
            to="/gateways"
            search={{ view: 'pools', pool: p.id }}
            className="text-indigo-800 underline"
          >
            {p.name}
          </Link>
        </span>
      ))}
    </span>
  );
}
