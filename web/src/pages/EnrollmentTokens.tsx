import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { api, unwrap } from '../api/client';
import type { CreatedEnrollmentToken, EnrollmentToken, Page } from '../api/types';
import { ConfirmButton } from '../components/Dialogs';
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
  Permitted,
  relativeTime,
  SearchField,
  splitFieldErrors,
  TableHead,
  TableScroll,
} from '../components/ui';
import { PageGate } from '../components/PageGate';
import { allPages, LIST_REFRESH_MS, usePools } from '../lib/queries';
import { hasPools, permission, useLicense, useMe } from '../lib/session';

export function EnrollmentTokensPage() {
  return (
    <PageGate
      title="Enrollment tokens"
      what="enrollment tokens"
      subject="EnrollmentToken"
      action="read"
    >
      <EnrollmentTokensPageView />
    </PageGate>
  );
}

function EnrollmentTokensPageView() {
  const qc = useQueryClient();
  const { data: me } = useMe();
  const license = useLicense();
  const licensed = hasPools(license);
  const pools = usePools(licensed);
  const tokens = useQuery({
    queryKey: ['enrollment-tokens'],
    // Created elsewhere (a teammate, Terraform): shown within half a minute, and on return to the tab.
    refetchInterval: LIST_REFRESH_MS,
    refetchOnWindowFocus: true,
    // Every page: an older token still active must be findable and revocable.
    queryFn: () =>
      allPages((cursor) =>
        unwrap<Page<EnrollmentToken>>(
          api.GET('/api/v1/gateways/enrollment-tokens', {
            params: { query: { cursor, limit: 200 } },
          }),
        ),
      ),
  });
  const [q, setQ] = useState('');
  const [activeOnly, setActiveOnly] = useState(false);
  const [poolQ, setPoolQ] = useState('');
  const [name, setName] = useState('');
  const [ttl, setTtl] = useState('3600');
  const [poolIds, setPoolIds] = useState<string[]>([]);
  const [created, setCreated] = useState<CreatedEnrollmentToken | null>(null);
  const create = useMutation({
    mutationFn: () =>
      unwrap<CreatedEnrollmentToken>(
        api.POST('/api/v1/gateways/enrollment-tokens', {
          body: { name: name.trim() || 'gateway enrollment', ttlSeconds: Number(ttl), poolIds },
        }),
      ),
    onSuccess: (t) => {
      setCreated(t);
      void qc.invalidateQueries({ queryKey: ['enrollment-tokens'] });
    },
  });
  const revoke = useMutation({
    mutationFn: (id: string) =>
      unwrap(api.DELETE('/api/v1/gateways/enrollment-tokens/{id}', { params: { path: { id } } })),
    onSettled: () => qc.invalidateQueries({ queryKey: ['enrollment-tokens'] }),
  });
  const stateOf = (t: EnrollmentToken) =>
    t.state ?? (t.revokedAt ? 'revoked' : t.usedAt ? 'used' : 'active');
  const poolName = (id: string) =>
    pools.data?.items.find((p) => p.id === id)?.name ?? id.slice(0, 8);
  const shownTokens = (tokens.data?.items ?? []).filter(
    (t) =>
      (!activeOnly || stateOf(t) === 'active') &&
      matches(q, t.name, stateOf(t), ...t.poolIds.map(poolName)),
  );
  const refused = splitFieldErrors(create.error, ['name', 'ttlSeconds', 'poolIds']);
  const canCreate = permission(me, 'create', 'EnrollmentToken');
  const canDelete = permission(me, 'delete', 'EnrollmentToken');
  const poolReason = !licensed
    ? 'Joining pools needs the Enterprise plan (Upgrade to Enterprise in Organization settings).'
    : permission(me, 'edit', 'GatewayPool').reason || undefined;
  return (
    <div className="flex flex-col gap-4">
      <h1 className="text-2xl font-semibold">Enrollment tokens</h1>
      <Card title="New token">
        <Permitted check={canCreate}>
          <p className="mb-3 text-sm text-slate-700">
            Single-use: one token enrolls one gateway. Create one per gateway.
          </p>
          <Form
            className="grid gap-3 md:grid-cols-3"
            onSubmit={() => create.mutateAsync()}
            // Editing again makes the last refusal stale.
            onChange={() => create.reset()}
          >
            <Field label="Token name" error={refused.of('name')}>
              {(id, d, invalid) => (
                <Input
                  id={id}
                  aria-describedby={d}
                  aria-invalid={invalid}
                  value={name}
                  placeholder="gateway enrollment"
                  onChange={(e) => setName(e.target.value)}
                />
              )}
            </Field>
            <Field label="Valid for (seconds)" hint="60 to 86400." error={refused.of('ttlSeconds')}>
              {(id, d, invalid) => (
                <Input
                  id={id}
                  aria-invalid={invalid}
                  type="number"
                  min={60}
                  max={86400}
                  aria-describedby={d}
                  value={ttl}
                  onChange={(e) => setTtl(e.target.value)}
                />
              )}
            </Field>
            <fieldset
              className="flex flex-col gap-1"
              aria-describedby={refused.of('poolIds') ? 'enroll-pools-err' : undefined}
            >
              <legend className="text-sm font-medium">Pools to join</legend>
              {poolReason ? (
                <p className="text-xs text-slate-600">{poolReason}</p>
              ) : !pools.data?.items.length ? (
                <p className="text-xs text-slate-600">No pools yet.</p>
              ) : (
                <>
                  {pools.data.items.length > 8 && (
                    <Input
                      type="search"
                      aria-label="Search pools to join"
                      placeholder="Search pools"
                      value={poolQ}
                      autoComplete="off"
                      onChange={(e) => setPoolQ(e.target.value)}
                      // Inside the form: Enter narrows the list, it does not submit the form.
                      onKeyDown={(e) => e.key === 'Enter' && e.preventDefault()}
                    />
                  )}
                  {/* Bounded: a hundred pools scroll inside the box, not down the page. */}
                  <div className="flex max-h-48 flex-col overflow-y-auto" data-testid="join-pools">
                    {pools.data.items
                      // A chosen pool stays visible whatever is typed.
                      .filter((p) => poolIds.includes(p.id) || matches(poolQ, p.name))
                      .map((p) => (
                        <label key={p.id} className="flex items-center gap-2 py-0.5 text-sm">
                          <input
                            type="checkbox"
                            checked={poolIds.includes(p.id)}
                            onChange={(e) =>
                              setPoolIds(
                                e.target.checked
                                  ? [...poolIds, p.id]
                                  : poolIds.filter((x) => x !== p.id),
                              )
                            }
                          />
                          {p.name}
                        </label>
                      ))}
                  </div>
                  {poolIds.length > 0 && (
                    <p className="text-xs text-slate-600">{poolIds.length} chosen</p>
                  )}
                </>
              )}
              {refused.of('poolIds') && (
                <p id="enroll-pools-err" role="alert" className="text-xs text-red-700">
                  {refused.of('poolIds')}
                </p>
              )}
            </fieldset>
            <div className="md:col-span-3">
              <ErrorText error={refused.rest} />
              <Button type="submit" tone="primary" disabled={create.isPending}>
                Create token
              </Button>
            </div>
          </Form>
        </Permitted>
      </Card>
      {created && (
        <section
          role="region"
          aria-label="New enrollment token"
          className="rounded-lg border border-green-300 bg-green-50 p-4"
        >
          <p className="text-sm font-medium text-green-900">
            Token “{created.name}” created. It is shown only once and expires{' '}
            {new Date(created.expiresAt).toLocaleString()}. Single-use: one token enrolls one
            gateway.
          </p>
          <p className="mt-2 text-sm">
            Run this on a host inside the network (replace the name and what it may reach):
          </p>
          <pre
            data-testid="enroll-command"
            tabIndex={0}
            className="mt-1 overflow-x-auto rounded bg-slate-900 p-3 font-mono text-xs text-slate-50"
          >
            {created.command}
          </pre>
          <div className="mt-2 flex flex-wrap items-start gap-2">
            <CopyButton text={created.command} label="Copy command" />
            <CopyButton text={created.token} label="Copy token" />
            <Button small onClick={() => setCreated(null)}>
              Done
            </Button>
          </div>
        </section>
      )}
      <Card title="Tokens">
        {tokens.isPending ? (
          <Loading what="tokens" />
        ) : tokens.error ? (
          <ErrorText error={tokens.error} />
        ) : !tokens.data.items.length ? (
          <Empty title="No enrollment tokens" />
        ) : (
          <div className="flex flex-col gap-2">
            <div className="flex flex-wrap items-end gap-3">
              <SearchField label="Search tokens" value={q} onChange={setQ} />
              <label className="flex items-center gap-2 pb-1.5 text-sm">
                <input
                  type="checkbox"
                  checked={activeOnly}
                  onChange={(e) => setActiveOnly(e.target.checked)}
                />
                Active only
              </label>
              <ListCount
                shown={shownTokens.length}
                total={tokens.data.items.length}
                more={!!tokens.data.nextCursor}
                noun="token"
              />
            </div>
            {!shownTokens.length ? (
              <Empty title="No token matches" />
            ) : (
              <TableScroll>
                <table className="w-full text-left text-sm">
                  <TableHead
                    columns={['Name', 'Status', 'Expires', 'Pools', '']}
                    cell="py-1 pr-2"
                  />
                  <tbody>
                    {shownTokens.map((t) => (
                      <tr key={t.id} className="border-t border-slate-100">
                        <td className="py-2 pr-2">{t.name}</td>
                        <td className="py-2 pr-2">{stateOf(t)}</td>
                        <td className="py-2 pr-2">{new Date(t.expiresAt).toLocaleString()}</td>
                        <td className="py-2 pr-2">{t.poolIds.map(poolName).join(', ') || '—'}</td>
                        <td className="py-2">
                          {!t.revokedAt && !t.usedAt && (
                            <ConfirmButton
                              label="Revoke"
                              confirmLabel="Revoke"
                              title={`Revoke “${t.name}”?`}
                              body="A gateway that has not enrolled with it yet will be refused."
                              disabledReason={canDelete.allowed ? undefined : canDelete.reason}
                              onConfirm={() => revoke.mutateAsync(t.id)}
                            />
                          )}
                          {t.createdAt && (
                            <span className="sr-only">created {relativeTime(t.createdAt)}</span>
                          )}
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
    </div>
  );
}
