import { useQuery } from '@tanstack/react-query';
import { Link, useParams } from '@tanstack/react-router';
import { api, unwrap } from '../api/client';
import type { AuditEntry, Page } from '../api/types';
import { GatewayControls } from '../components/GatewayControls';
import { HealthBadge } from '../components/HealthBadge';
import { Card, ErrorText, LoadError, Loading, relativeTime } from '../components/ui';
import { useGateway, usePoolsOfGateways } from '../lib/queries';
import { hasPools, permission, useLicense, useMe } from '../lib/session';

export function GatewayDetailPage() {
  const { id } = useParams({ strict: false }) as { id: string };
  const gw = useGateway(id);
  const { data: me } = useMe();
  const license = useLicense();
  const poolsOf = usePoolsOfGateways(hasPools(license));
  const canAudit = permission(me, 'read', 'AuditLog');
  const edit = permission(me, 'edit', 'Gateway');
  const history = useQuery({
    queryKey: ['audit', 'gateway', id],
    queryFn: () =>
      unwrap<Page<AuditEntry>>(
        api.GET('/api/v1/audit-logs', { params: { query: { event: 'gateway.*', limit: 200 } } }),
      ),
    enabled: canAudit.allowed,
  });
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
  const rows: [string, React.ReactNode][] = [
    ['Health', <HealthBadge key="h" health={g.health} />],
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
    ['Connected resources', g.connectedResourcesCount ?? '—'],
    ['ID', <code key="id">{g.id}</code>],
  ];
  const events = (history.data?.items ?? []).filter((e) => e.metadata.gatewayId === id);
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
      <Card title="Connection history">
        {!canAudit.allowed ? (
          <p className="text-sm text-slate-600">{canAudit.reason}</p>
        ) : history.isPending ? (
          <Loading what="history" />
        ) : history.error ? (
          <ErrorText error={history.error} />
        ) : !events.length ? (
          <p className="text-sm text-slate-600">No connection events recorded yet.</p>
        ) : (
          <ul className="flex flex-col gap-1 text-sm">
            {events.map((e) => (
              <li key={e.id}>
                <time dateTime={e.createdAt}>{new Date(e.createdAt).toLocaleString()}</time> —{' '}
                <span className="font-mono text-xs">{e.event}</span>
                {typeof e.metadata.reason === 'string' && (
                  <span className="text-slate-600"> ({e.metadata.reason})</span>
                )}
              </li>
            ))}
          </ul>
        )}
        {history.data?.nextCursor && (
          // The log has no per-gateway filter: this is picked from the latest gateway events.
          <p className="mt-2 text-xs text-slate-600">
            From the latest 200 gateway events; older ones are in the{' '}
            <Link to="/audit" search={{ event: 'gateway.*' }} className="text-indigo-800 underline">
              audit log
            </Link>
            .
          </p>
        )}
      </Card>
    </div>
  );
}
