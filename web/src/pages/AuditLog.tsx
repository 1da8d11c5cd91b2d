import { useInfiniteQuery, useQuery } from '@tanstack/react-query';
import { useNavigate, useSearch } from '@tanstack/react-router';
import { useId, useState } from 'react';
import { api, unwrap } from '../api/client';
import type { AuditEntry, Identity, Member, Page } from '../api/types';
import {
  Button,
  Card,
  Empty,
  ErrorText,
  Field,
  Form,
  Input,
  Loading,
  splitFieldErrors,
  TableHead,
} from '../components/ui';
import { allPages, useGateways } from '../lib/queries';
import { permission, useMe } from '../lib/session';
import type { AuditSearch } from '../router';

const ACTOR_TYPES = ['user', 'identity', 'gateway', 'system', 'anonymous'] as const;
type ActorType = (typeof ACTOR_TYPES)[number];

/**
 * The people, identities and gateways the user may list, to pick an actor from by e-mail or
 * name. The log is filtered by the name it recorded (what its Actor column shows), so entries
 * of an actor deleted since, or of a failed sign-in, are found by typing the name too.
 */
function useActorChoices(): { value: string; kind: string }[] {
  const { data: me } = useMe();
  const members = useQuery({
    queryKey: ['members'],
    queryFn: () =>
      allPages((cursor) =>
        unwrap<Page<Member>>(
          api.GET('/api/v1/users', { params: { query: { cursor, limit: 200 } } }),
        ),
      ),
    enabled: permission(me, 'read', 'Member').allowed,
  });
  const identities = useQuery({
    queryKey: ['identities'],
    queryFn: () =>
      allPages((cursor) =>
        unwrap<Page<Identity>>(
          api.GET('/api/v1/identities', { params: { query: { cursor, limit: 200 } } }),
        ),
      ),
    enabled: permission(me, 'read', 'Identity').allowed,
  });
  const gateways = useGateways();
  return [
    ...(members.data?.items ?? []).map((m) => ({ value: m.email, kind: 'member' })),
    ...(identities.data?.items ?? []).map((i) => ({ value: i.name, kind: 'identity' })),
    ...(gateways.data?.items ?? []).map((g) => ({ value: g.name, kind: 'gateway' })),
  ];
}

const isActorType = (v: string | undefined): v is ActorType =>
  (ACTOR_TYPES as readonly string[]).includes(v ?? '');

export function AuditLogPage() {
  const { data: me } = useMe();
  const search: AuditSearch = useSearch({ strict: false });
  const can = permission(me, 'read', 'AuditLog');
  if (!me) return null;
  // A deep link without the permission: the app's own words, not the API's raw 403.
  if (!can.allowed)
    return (
      <div className="flex flex-col gap-3">
        <h1 className="text-2xl font-semibold">Audit log</h1>
        <Empty title="You don't have access to the audit log">{can.reason}</Empty>
      </div>
    );
  // Anew for each URL: Back/Forward to other filters shows them in the fields too.
  return <AuditLogView key={JSON.stringify(search)} search={search} />;
}

function AuditLogView({ search }: { search: AuditSearch }) {
  const navigate = useNavigate();
  const applied = {
    event: search.event ?? '',
    actor: search.actor ?? '',
    actorType: isActorType(search.actorType) ? search.actorType : ('' as const),
    from: search.from ?? '',
    to: search.to ?? '',
  };
  const [event, setEvent] = useState(applied.event);
  const [actor, setActor] = useState(applied.actor);
  const [from, setFrom] = useState(applied.from);
  const [to, setTo] = useState(applied.to);
  const [actorType, setActorType] = useState<ActorType | ''>(applied.actorType);
  const [open, setOpen] = useState<Set<string>>(new Set());
  const toggle = (id: string) =>
    setOpen((o) => {
      const n = new Set(o);
      if (n.has(id)) n.delete(id);
      else n.add(id);
      return n;
    });
  const setApplied = (f: typeof applied) =>
    void navigate({
      to: '/audit',
      search: {
        event: f.event || undefined,
        actor: f.actor || undefined,
        actorType: f.actorType || undefined,
        from: f.from || undefined,
        to: f.to || undefined,
      },
    });
  const actors = useActorChoices();
  const listId = useId();
  const log = useInfiniteQuery({
    queryKey: ['audit', 'log', applied],
    initialPageParam: undefined as string | undefined,
    queryFn: ({ pageParam }) =>
      unwrap<Page<AuditEntry>>(
        api.GET('/api/v1/audit-logs', {
          params: {
            query: {
              limit: 50,
              cursor: pageParam,
              event: applied.event || undefined,
              actor: applied.actor.trim() || undefined,
              actorType: applied.actorType || undefined,
              from: applied.from ? new Date(applied.from).toISOString() : undefined,
              to: applied.to ? new Date(applied.to).toISOString() : undefined,
            },
          },
        }),
      ),
    getNextPageParam: (last) => last.nextCursor ?? undefined,
  });
  const items = log.data?.pages.flatMap((p) => p.items) ?? [];
  const refused = splitFieldErrors(log.error, ['event', 'actor', 'actorType', 'from', 'to']);
  return (
    <div className="flex flex-col gap-4">
      <h1 className="text-2xl font-semibold">Audit log</h1>
      <Card>
        <Form
          className="flex flex-wrap items-start gap-3"
          onSubmit={() => setApplied({ event, actor, actorType, from, to })}
        >
          <Field label="Event" error={refused.of('event')}>
            {(id, d, invalid) => (
              <Input
                id={id}
                aria-describedby={d}
                aria-invalid={invalid}
                placeholder="gateway-pool.*"
                value={event}
                onChange={(e) => setEvent(e.target.value)}
              />
            )}
          </Field>
          <Field label="Actor" error={refused.of('actor')}>
            {(id, d, invalid) => (
              <>
                <Input
                  id={id}
                  list={listId}
                  autoComplete="off"
                  placeholder="email or name"
                  aria-describedby={d}
                  aria-invalid={invalid}
                  value={actor}
                  onChange={(e) => setActor(e.target.value)}
                />
                <datalist id={listId}>
                  {actors.map((a) => (
                    <option key={`${a.kind}:${a.value}`} value={a.value} label={a.kind} />
                  ))}
                </datalist>
              </>
            )}
          </Field>
          <Field label="Actor type" error={refused.of('actorType')}>
            {(id, d, invalid) => (
              <select
                id={id}
                aria-describedby={d}
                aria-invalid={invalid}
                className="rounded-md border border-slate-400 bg-white px-2 py-1.5 text-sm"
                value={actorType}
                onChange={(e) => setActorType(e.target.value as ActorType | '')}
              >
                <option value="">any</option>
                {ACTOR_TYPES.map((t) => (
                  <option key={t}>{t}</option>
                ))}
              </select>
            )}
          </Field>
          <Field label="From" error={refused.of('from')}>
            {(id, d, invalid) => (
              <Input
                id={id}
                aria-describedby={d}
                aria-invalid={invalid}
                type="datetime-local"
                value={from}
                onChange={(e) => setFrom(e.target.value)}
              />
            )}
          </Field>
          <Field label="To" error={refused.of('to')}>
            {(id, d, invalid) => (
              <Input
                id={id}
                aria-describedby={d}
                aria-invalid={invalid}
                type="datetime-local"
                value={to}
                onChange={(e) => setTo(e.target.value)}
              />
            )}
          </Field>
          <div className="pt-6">
            <Button type="submit" tone="primary">
              Filter
            </Button>
          </div>
        </Form>
        <p className="mt-2 text-xs text-slate-600">
          Event: exact, or a prefix ending in * (gateway-pool.*). Actor: an e-mail or name as the
          log recorded it (pick one of this organization's members, identities or gateways, or type
          any). Times are your local time.
        </p>
      </Card>
      {log.isPending ? (
        <Loading what="audit log" />
      ) : log.error ? (
        refused.rest ? (
          <ErrorText error={refused.rest} />
        ) : (
          <Empty title="The filter was refused: correct the marked field above." />
        )
      ) : !items.length ? (
        <Empty title="No audit entries match" />
      ) : (
        <div className="relative overflow-x-auto rounded-lg border border-slate-200 bg-white">
          <table className="w-full text-left text-sm">
            <TableHead
              columns={[
                'Time',
                'Event',
                'Actor',
                { label: 'Source IP', className: 'hidden xl:table-cell' },
                'Details',
              ]}
            />
            <tbody>
              {items.map((e) => (
                <tr key={e.id} className="border-t border-slate-100 align-top" data-audit={e.event}>
                  <td className="px-3 py-1.5 whitespace-nowrap">
                    {new Date(e.createdAt).toLocaleString()}
                  </td>
                  <td className="px-3 py-1.5 font-mono text-xs">{e.event}</td>
                  <td className="px-3 py-1.5">
                    {e.actor.name ?? '—'}{' '}
                    <span className="text-xs text-slate-600">({e.actor.type})</span>
                  </td>
                  <td
                    className="hidden px-3 py-1.5 font-mono text-xs whitespace-nowrap xl:table-cell"
                    title={e.userAgent ?? undefined}
                  >
                    {e.ip ?? '—'}
                  </td>
                  <td className="max-w-md px-3 py-1.5 text-xs text-slate-700">
                    {open.has(e.id) && (e.ip || e.userAgent) && (
                      <dl
                        className="mb-1 grid grid-cols-[6rem_minmax(0,1fr)] gap-x-2"
                        data-testid="audit-source"
                      >
                        <dt className="text-slate-600">Source IP</dt>
                        <dd className="font-mono">{e.ip ?? '—'}</dd>
                        <dt className="text-slate-600">User agent</dt>
                        <dd className="[overflow-wrap:anywhere]">{e.userAgent ?? '—'}</dd>
                      </dl>
                    )}
                    {open.has(e.id) ? (
                      <pre
                        data-testid="audit-details"
                        className="max-h-80 overflow-auto rounded bg-slate-50 p-2 font-mono whitespace-pre-wrap [overflow-wrap:anywhere]"
                      >
                        {JSON.stringify(e.metadata, null, 2)}
                      </pre>
                    ) : (
                      <p className="truncate font-mono" title={JSON.stringify(e.metadata)}>
                        {JSON.stringify(e.metadata)}
                      </p>
                    )}
                    {(Object.keys(e.metadata ?? {}).length > 0 || !!e.ip || !!e.userAgent) && (
                      <Button
                        small
                        tone="ghost"
                        aria-expanded={open.has(e.id)}
                        onClick={() => toggle(e.id)}
                      >
                        {open.has(e.id) ? 'Hide details' : 'Show details'}
                      </Button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {log.hasNextPage && (
        <div>
          <Button onClick={() => void log.fetchNextPage()} disabled={log.isFetchingNextPage}>
            Load more
          </Button>
        </div>
      )}
    </div>
  );
}
