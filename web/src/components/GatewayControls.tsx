import { useEffect, useRef, useState, type ReactNode } from 'react';
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

/**
 * A number edited in place: saved on Enter or when focus leaves, only if it changed, once
 * (Enter then leaving does not send it again). When the platform refuses it, the field goes
 * back to the saved value (the row shows why).
 */
export function InlineNumber({
  label,
  value,
  min,
  disabledReason,
  onCommit,
  onEdit,
}: {
  label: string;
  value: number;
  min: number;
  disabledReason?: string;
  onCommit: (n: number) => Promise<unknown>;
  /** Called as the user types (e.g. to clear the last refusal). */
  onEdit?: () => void;
}) {
  const [text, setText] = useState(String(value));
  // The text being sent, so a second Enter or the blur after Enter does not send it again.
  const sending = useRef<string | null>(null);
  // The saved value changed (this save, a live update): show it.
  useEffect(() => setText(String(value)), [value]);
  const commit = () => {
    if (text.trim() === '' || !Number.isFinite(Number(text))) {
      setText(String(value));
      return;
    }
    if (Number(text) === value || sending.current === text) return;
    sending.current = text;
    onCommit(Number(text)).then(
      () => {
        sending.current = null;
      },
      () => {
        sending.current = null;
        setText(String(value));
      },
    );
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
      onChange={(e) => {
        setText(e.target.value);
        onEdit?.();
      }}
      onBlur={commit}
      onKeyDown={(e) => e.key === 'Enter' && commit()}
    />
  );
}
