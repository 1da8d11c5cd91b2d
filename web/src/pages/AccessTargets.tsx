import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { api, unwrap } from '../api/client';
import type { AccessTarget, Page } from '../api/types';
import { ConfirmButton } from '../components/Dialogs';
import { GatewayPicker, type GatewayChoice } from '../components/GatewayPicker';
import {
  Button,
  Card,
  CopyButton,
  Empty,
  ErrorText,
  Field,
  Form,
  Input,
  Loading,
  Permitted,
  TableHead,
} from '../components/ui';
import { allPages, useGateways, usePools } from '../lib/queries';
import { hasPools, permission, useLicense, useMe } from '../lib/session';

const PROTOCOLS: AccessTarget['protocol'][] = ['tcp', 'postgres', 'http', 'kubernetes'];

export function AccessTargetsPage() {
  const qc = useQueryClient();
  const { data: me } = useMe();
  const license = useLicense();
  const licensed = hasPools(license.data);
  const pools = usePools(licensed);
  const gateways = useGateways();
  const org = useQuery({
    queryKey: ['organization'],
    queryFn: () => unwrap<{ requireGatewayPools?: boolean }>(api.GET('/api/v1/organization')),
  });
  const targets = useQuery({
    queryKey: ['access-targets'],
    queryFn: () =>
      allPages((cursor) =>
        unwrap<Page<AccessTarget>>(
          api.GET('/api/v1/access-targets', { params: { query: { cursor, limit: 200 } } }),
        ),
      ),
  });
  const [form, setForm] = useState({ name: '', host: '', port: '5432', protocol: 'postgres' });
  const [via, setVia] = useState<GatewayChoice>({ kind: 'direct' });
  const create = useMutation({
    mutationFn: () =>
      unwrap(
        api.POST('/api/v1/access-targets', {
          body: {
            name: form.name,
            host: form.host,
            port: Number(form.port),
            protocol: form.protocol as AccessTarget['protocol'],
            ...(via.kind === 'pool' ? { gatewayPoolId: via.id } : {}),
            ...(via.kind === 'gateway' ? { gatewayId: via.id } : {}),
          },
        }),
      ),
    onSuccess: () => {
      setForm({ ...form, name: '' });
      void qc.invalidateQueries({ queryKey: ['access-targets'] });
    },
  });
  const remove = useMutation({
    mutationFn: (target: string) =>
      unwrap(api.DELETE('/api/v1/access-targets/{target}', { params: { path: { target } } })),
    onSettled: () => qc.invalidateQueries({ queryKey: ['access-targets'] }),
  });
  const canCreate = permission(me, 'create', 'AccessTarget');
  const canDelete = permission(me, 'delete', 'AccessTarget');
  const attachPool = permission(me, 'attach', 'GatewayPool');
  const attachGateway = permission(me, 'attach', 'Gateway');
  return (
    <div className="flex flex-col gap-4">
      <h1 className="text-2xl font-semibold">Access targets</h1>
      <Card title="New access target">
        <Permitted check={canCreate}>
          <Form className="flex flex-col gap-3" onSubmit={() => create.mutate()}>
            <div className="grid gap-3 md:grid-cols-4">
              <Field label="Target name">
                {(id) => (
                  <Input
                    id={id}
                    required
                    value={form.name}
                    onChange={(e) => setForm({ ...form, name: e.target.value })}
                  />
                )}
              </Field>
              <Field label="Host">
                {(id) => (
                  <Input
                    id={id}
                    required
                    value={form.host}
                    onChange={(e) => setForm({ ...form, host: e.target.value })}
                  />
                )}
              </Field>
              <Field label="Port">
                {(id) => (
                  <Input
                    id={id}
                    type="number"
                    required
                    value={form.port}
                    onChange={(e) => setForm({ ...form, port: e.target.value })}
                  />
                )}
              </Field>
              <Field label="Protocol">
                {(id) => (
                  <select
                    id={id}
                    className="rounded-md border border-slate-400 bg-white px-2 py-1.5 text-sm"
                    value={form.protocol}
                    onChange={(e) => setForm({ ...form, protocol: e.target.value })}
                  >
                    {PROTOCOLS.map((p) => (
                      <option key={p}>{p}</option>
                    ))}
                  </select>
                )}
              </Field>
            </div>
            <GatewayPicker
              value={via}
              onChange={setVia}
              gateways={gateways.data?.items ?? []}
              pools={pools.data?.items ?? []}
              poolsLicensed={licensed}
              requirePools={!!org.data?.requireGatewayPools}
              poolsDisabledReason={attachPool.allowed ? undefined : attachPool.reason}
              gatewaysDisabledReason={attachGateway.allowed ? undefined : attachGateway.reason}
              allowDirect={false}
              legend="Reach the target through"
            />
            <ErrorText error={create.error} />
            <div>
              <Button
                type="submit"
                tone="primary"
                disabled={create.isPending || via.kind === 'direct'}
                title={via.kind === 'direct' ? 'Choose a pool or a gateway.' : undefined}
              >
                Create access target
              </Button>
            </div>
          </Form>
        </Permitted>
      </Card>
      <Card title="Targets">
        {targets.isPending ? (
          <Loading what="access targets" />
        ) : targets.error ? (
          <ErrorText error={targets.error} />
        ) : !targets.data.items.length ? (
          <Empty title="No access targets yet">
            A target names a host:port inside your network, reached through a pool or gateway.
          </Empty>
        ) : (
          <table className="w-full text-left text-sm">
            <TableHead columns={['Name', 'Target', 'Through', 'Connect', '']} cell="py-1 pr-2" />
            <tbody>
              {targets.data.items.map((t) => (
                <tr key={t.id} className="border-t border-slate-100 align-top" data-target={t.name}>
                  <td className="py-2 pr-2 font-medium">{t.name}</td>
                  <td className="py-2 pr-2 font-mono text-xs">
                    {t.protocol}://{t.host}:{t.port}
                  </td>
                  <td className="py-2 pr-2">
                    {t.gatewayPool
                      ? `pool ${t.gatewayPool.name}`
                      : t.gateway
                        ? `gateway ${t.gateway.name}`
                        : '—'}
                  </td>
                  <td className="py-2 pr-2">
                    <code className="mr-2 rounded bg-slate-100 px-1.5 py-0.5 text-xs">
                      gatepool connect {t.name}
                    </code>
                    <CopyButton text={`gatepool connect ${t.name}`} />
                  </td>
                  <td className="py-2">
                    <ConfirmButton
                      label="Delete"
                      title={`Delete access target “${t.name}”?`}
                      body="Open connections end; new ones are refused."
                      typeToConfirm={t.name}
                      disabledReason={canDelete.allowed ? undefined : canDelete.reason}
                      onConfirm={() => remove.mutateAsync(t.id)}
                    />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Card>
    </div>
  );
}
