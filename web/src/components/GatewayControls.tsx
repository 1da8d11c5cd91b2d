import { useState, type ReactNode } from 'react';
import { api, unwrap } from '../api/client';
import type { HealthCheckResult } from '../api/types';
import { useInfraMutation } from '../lib/queries';
import { Button, ErrorText, Input } from './ui';

/**
 * The actions every gateway row has, in the gateways list as in a pool's members: a live
 * health check (shows the RTT or the reason), drain/undrain, plus the row's own `extra`.
 */
export function GatewayControls({
  gatewayId,
  draining,
  checkLabel = 'Health check',
  drainDisabledReason,
  extra,
  error,
}: {
  gatewayId: string;
  draining: boolean;
  checkLabel?: string;
  drainDisabledReason?: string;
  extra?: ReactNode;
  /** An error of the row's own actions, shown with these. */
  error?: unknown;
}) {
  const [check, setCheck] = useState<string | null>(null);
  const path = { params: { path: { id: gatewayId } } };
  const healthCheck = useInfraMutation(() =>
    unwrap<HealthCheckResult>(api.POST('/api/v1/gateways/{id}/health-check', path)),
  );
  const drain = useInfraMutation((on: boolean) =>
    unwrap(api.POST(on ? '/api/v1/gateways/{id}/drain' : '/api/v1/gateways/{id}/undrain', path)),
  );
  return (
    <>
      <div className="flex flex-wrap gap-1">
        <Button
          small
          onClick={() =>
            healthCheck.mutate(undefined, {
              onSuccess: (r) => setCheck(r.ok ? `RTT ${r.rttMs} ms` : (r.error ?? 'failed')),
              onError: (e) => setCheck(e.message),
            })
          }
        >
          {checkLabel}
        </Button>
        <Button small disabledReason={drainDisabledReason} onClick={() => drain.mutate(!draining)}>
          {draining ? 'Undrain' : 'Drain'}
        </Button>
        {extra}
      </div>
      {check && (
        <p role="status" className="mt-1 text-xs text-slate-700">
          {check}
        </p>
      )}
      <ErrorText error={error ?? drain.error} />
    </>
  );
}

/** A number edited in place: saved on Enter or when focus leaves, only if it changed. */
export function InlineNumber({
  label,
  value,
  min,
  disabledReason,
  onCommit,
}: {
  label: string;
  value: number;
  min: number;
  disabledReason?: string;
  onCommit: (n: number) => void;
}) {
  const [text, setText] = useState(String(value));
  const commit = () => {
    if (text !== '' && Number(text) !== value) onCommit(Number(text));
  };
  return (
    <Input
      aria-label={label}
      className="w-20"
      type="number"
      min={min}
      value={text}
      disabled={!!disabledReason}
      title={disabledReason}
      onChange={(e) => setText(e.target.value)}
      onBlur={commit}
      onKeyDown={(e) => e.key === 'Enter' && commit()}
    />
  );
}
