import { useInfiniteQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { api, unwrap } from '../api/client';
import type { AuditEntry, Page } from '../api/types';
import {
  Button,
  Card,
  Empty,
  ErrorText,
  Field,
  Form,
  Input,
  Loading,
  TableHead,
} from '../components/ui';

export function AuditLogPage() {
  const [event, setEvent] = useState('');
  const [actor, setActor] = useState('');
  const [from, setFrom] = useState('');
  const [to, setTo] = useState('');
  const [applied, setApplied] = useState({ event: '', actor: '', from: '', to: '' });
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
              actor: applied.actor || undefined,
              from: applied.from ? new Date(applied.from).toISOString() : undefined,
              to: applied.to ? new Date(applied.to).toISOString() : undefined,
            },
          },
        }),
      ),
    getNextPageParam: (last) => last.nextCursor ?? undefined,
  });
  const items = log.data?.pages.flatMap((p) => p.items) ?? [];
  return (
    <div className="flex flex-col gap-4">
      <h1 className="text-2xl font-semibold">Audit log</h1>
      <Card>
        <Form
          className="flex flex-wrap items-end gap-3"
          onSubmit={() => setApplied({ event, actor, from, to })}
        >
          <Field label="Event">
            {(id) => (
              <Input
                id={id}
                placeholder="gateway-pool.*"
                value={event}
                onChange={(e) => setEvent(e.target.value)}
              />
            )}
          </Field>
          <Field label="Actor">
            {(id) => (
              <Input
                id={id}
                placeholder="email or name"
                value={actor}
                onChange={(e) => setActor(e.target.value)}
              />
            )}
          </Field>
          <Field label="From">
            {(id) => (
              <Input
                id={id}
                type="datetime-local"
                value={from}
                onChange={(e) => setFrom(e.target.value)}
              />
            )}
          </Field>
          <Field label="To">
            {(id) => (
              <Input
                id={id}
                type="datetime-local"
                value={to}
                onChange={(e) => setTo(e.target.value)}
              />
            )}
          </Field>
          <Button type="submit" tone="primary">
            Filter
          </Button>
        </Form>
        <p className="mt-2 text-xs text-slate-600">
          Event: exact, or a prefix ending in * (gateway-pool.*). Times are your local time.
        </p>
      </Card>
      {log.isPending ? (
        <Loading what="audit log" />
      ) : log.error ? (
        <ErrorText error={log.error} />
      ) : !items.length ? (
        <Empty title="No audit entries match" />
      ) : (
        <div className="relative overflow-x-auto rounded-lg border border-slate-200 bg-white">
          <table className="w-full text-left text-sm">
            <TableHead columns={['Time', 'Event', 'Actor', 'Details']} />
            <tbody>
              {items.map((e) => (
                <tr key={e.id} className="border-t border-slate-100 align-top">
                  <td className="px-3 py-1.5 whitespace-nowrap">
                    {new Date(e.createdAt).toLocaleString()}
                  </td>
                  <td className="px-3 py-1.5 font-mono text-xs">{e.event}</td>
                  <td className="px-3 py-1.5">
                    {e.actor.name ?? '—'}{' '}
                    <span className="text-xs text-slate-600">({e.actor.type})</span>
                  </td>
                  <td
                    className="max-w-md truncate px-3 py-1.5 font-mono text-xs text-slate-700"
                    title={JSON.stringify(e.metadata)}
                  >
                    {JSON.stringify(e.metadata)}
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
