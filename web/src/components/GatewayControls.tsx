import { useEffect, useId, useRef, useState, type ReactNode } from 'react';
import { api, unwrap } from '../api/client';
import type { HealthCheckResult } from '../api/types';
import { byName, useInfraMutation, usePoolMembership } from '../lib/queries';
import { hasPools, useLicense } from '../lib/session';
import { ConfirmButton } from './Dialogs';
import { Button, ErrorText, Input } from './ui';

/** How long a health check's result stays next to its gateway. */
export const CHECK_RESULT_MS = 30_000;

/**
 * The actions every gateway row has, in the gateways list as in a pool's members: a live
 * health check (shows the RTT or the reason), drain/undrain, plus the row's own `extra`.
 */
export function GatewayControls({
  gatewayId,
  gatewayName,
  draining,
  checkLabel = 'Health check',
  drainDisabledReason,
  extra,
  error,
  health,
  nowrap,
}: {
  gatewayId: string;
  gatewayName: string;
  draining: boolean;
  /** The gateway's live health: a check's result says no more once it changes. */
  health?: string;
  checkLabel?: string;
  drainDisabledReason?: string;
  extra?: ReactNode;
  /** An error of the row's own actions, shown with these. */
  error?: unknown;
  /** The buttons stay on one line (a table row whose height should not jump). */
  nowrap?: boolean;
}) {
  // A result is about the health the platform saw when checking: once the live health moves
  // on (e.g. the member recovered) or half a minute passed, it is stale and goes.
  const [check, setCheck] = useState<{ text: string; health?: string } | null>(null);
  const expire = useRef<ReturnType<typeof setTimeout>>(undefined);
  useEffect(() => () => clearTimeout(expire.current), []);
  const show = (text: string, seen?: string) => {
    setCheck({ text, health: seen });
    clearTimeout(expire.current);
    expire.current = setTimeout(() => setCheck(null), CHECK_RESULT_MS);
  };
  const path = { params: { path: { id: gatewayId } } };
  const healthCheck = useInfraMutation(() =>
    unwrap<HealthCheckResult>(api.POST('/api/v1/gateways/{id}/health-check', path)),
  );
  const drain = useInfraMutation(() => unwrap(api.POST('/api/v1/gateways/{id}/drain', path)));
  const undrain = useInfraMutation(() => unwrap(api.POST('/api/v1/gateways/{id}/undrain', path)));
  return (
    <>
      <div className={`flex gap-1 ${nowrap ? 'flex-nowrap' : 'flex-wrap'}`}>
        <Button
          small
          // Never letter by letter in a narrow column (QA4 F-NARROW-1): the table scrolls instead.
          className="whitespace-nowrap"
          onClick={() =>
            healthCheck.mutate(undefined, {
              onSuccess: (r) => show(r.ok ? `RTT ${r.rttMs} ms` : (r.error ?? 'failed'), r.health),
              onError: (e) => show(e.message, health),
            })
          }
        >
          {checkLabel}
        </Button>
        {draining ? (
          // Putting a gateway back into rotation takes nothing away: no question asked.
          <Button
            small
            disabledReason={drainDisabledReason}
            onClick={() => undrain.mutate(undefined)}
          >
            Undrain
          </Button>
        ) : (
          <ConfirmButton
            label="Drain"
            confirmLabel="Drain"
            tone="secondary"
            title={`Drain gateway “${gatewayName}”?`}
            body={<DrainImpact gatewayId={gatewayId} />}
            disabledReason={drainDisabledReason}
            onConfirm={() => drain.mutateAsync(undefined)}
          />
        )}
        {extra}
      </div>
      {/* Text under the buttons wraps to their width, even in a row kept on one line. */}
      <div className="max-w-xs whitespace-normal">
        {check && (health === undefined || check.health === health) && (
          <p role="status" className="mt-1 text-xs text-slate-700">
            {check.text}
          </p>
        )}
        {/* A refused drain is shown in its confirmation; an undrain has none. */}
        <ErrorText error={error ?? undrain.error} />
      </div>
    </>
  );
}

/**
 * What draining a gateway does, and to which of its pools: the pools' live members say which
 * would lose their last healthy member or fall below their min healthy, so the user knows
 * before taking it out of rotation.
 */
function DrainImpact({ gatewayId }: { gatewayId: string }) {
  const license = useLicense();
  const { pools: all, pending } = usePoolMembership(hasPools(license));
  const pools = all.filter((p) => p.members.some((m) => m.id === gatewayId));
  return (
    <div className="flex flex-col gap-2">
      <p>
        It takes no new connections or requests:{' '}
        {pools.length
          ? 'they go to the other healthy members of its pools'
          : 'whatever is attached to it directly gets no new connections'}
        . Open connections continue until they end. Undrain puts it back at once.
      </p>
      <PoolImpact gatewayId={gatewayId} verb="draining" />
      {pending && !pools.length && <p className="text-slate-600">Checking its pools…</p>}
    </div>
  );
}

/**
 * What taking `gatewayId` out (drain or delete) does to each of its pools: which lose their
 * last healthy member (and how many resources go dark), which fall below their min healthy,
 * and which have other healthy members to take over. Nothing when it is in no pool.
 */
export function PoolImpact({
  gatewayId,
  verb,
}: {
  gatewayId: string;
  verb: 'draining' | 'deleting';
}) {
  const license = useLicense();
  const { pools: all, pending } = usePoolMembership(hasPools(license));
  const pools = all
    .filter((p) => p.members.some((m) => m.id === gatewayId))
    .sort((a, b) => byName(a.name, b.name));
  if (!pools.length) {
    return pending && verb === 'deleting' ? (
      <p className="text-slate-600">Checking its pools…</p>
    ) : null;
  }
  return (
    <ul className="list-disc pl-5" aria-label={`Its pools after ${verb}`}>
      {pools.map((p) => {
        const self = p.members.find((m) => m.id === gatewayId);
        const others = p.members.filter((m) => m.id !== gatewayId && m.health === 'healthy');
        const uses = !p.connectedResourcesCount
          ? 'nothing uses it yet'
          : p.connectedResourcesCount === 1
            ? 'its 1 connected resource cannot connect until a member is healthy again'
            : `its ${p.connectedResourcesCount} connected resources cannot connect until a member is healthy again`;
        if (self?.health === 'healthy' && !others.length)
          return (
            <li key={p.id} className="font-medium text-red-800" data-impact="last-healthy">
              Pool “{p.name}” loses its last healthy member: {uses}.
            </li>
          );
        if (self?.health === 'healthy' && others.length < p.minHealthy)
          return (
            <li key={p.id} className="text-amber-900" data-impact="below-min">
              Pool “{p.name}” falls below its min healthy ({others.length} healthy left, min{' '}
              {p.minHealthy}).
            </li>
          );
        return (
          <li key={p.id}>
            Pool “{p.name}”{verb === 'deleting' ? ' loses a member' : ''}: {others.length} other
            healthy {others.length === 1 ? 'member takes' : 'members take'} over.
          </li>
        );
      })}
    </ul>
  );
}

/**
 * A number edited in place: saved on Enter or when focus leaves, only if it changed, once
 * (Enter then leaving does not send it again). When the platform refuses it, the typed value
 * stays for the user to correct, with the refusal under the field.
 */
export function InlineNumber({
  label,
  value,
  min,
  max,
  disabledReason,
  onCommit,
  onEdit,
}: {
  label: string;
  value: number;
  min: number;
  max: number;
  disabledReason?: string;
  onCommit: (n: number) => Promise<unknown>;
  /** Called as the user types (e.g. to clear the last refusal). */
  onEdit?: () => void;
}) {
  const [text, setText] = useState(String(value));
  const [error, setError] = useState<unknown>(null);
  const errId = useId();
  // The text being sent, so a second Enter or the blur after Enter does not send it again;
  // the text last refused, so leaving the field does not send it once more.
  const sending = useRef<string | null>(null);
  const refused = useRef<string | null>(null);
  // The saved value changed (this save, a live update): show it.
  useEffect(() => setText(String(value)), [value]);
  const commit = () => {
    if (text.trim() === '' || !Number.isFinite(Number(text))) {
      setText(String(value));
      return;
    }
    if (Number(text) === value || sending.current === text || refused.current === text) return;
    sending.current = text;
    const sent = text;
    onCommit(Number(text)).then(
      () => {
        sending.current = null;
      },
      (err: unknown) => {
        sending.current = null;
        refused.current = sent;
        setError(err);
      },
    );
  };
  return (
    <div className="flex flex-col gap-1">
      <Input
        aria-label={label}
        className="w-20"
        type="number"
        min={min}
        max={max}
        step={1}
        value={text}
        disabled={!!disabledReason}
        title={disabledReason}
        aria-invalid={!!error}
        aria-describedby={error ? errId : undefined}
        onChange={(e) => {
          setText(e.target.value);
          setError(null);
          refused.current = null;
          onEdit?.();
        }}
        onBlur={commit}
        onKeyDown={(e) => e.key === 'Enter' && commit()}
      />
      {!!error && (
        <p id={errId} role="alert" className="max-w-40 text-xs text-red-700">
          {error instanceof Error ? error.message : String(error)}
        </p>
      )}
    </div>
  );
}
