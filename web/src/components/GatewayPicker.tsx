import { useId } from 'react';
import type { Gateway, Pool } from '../api/types';
import { HealthBadge, PoolHealthBadge } from './HealthBadge';

export type GatewayChoice =
  { kind: 'pool'; id: string } | { kind: 'gateway'; id: string } | { kind: 'direct' };

export interface GatewayPickerProps {
  value: GatewayChoice;
  onChange: (v: GatewayChoice) => void;
  gateways: Pick<Gateway, 'id' | 'name' | 'health'>[];
  pools: Pick<
    Pool,
    'id' | 'name' | 'health' | 'memberCount' | 'healthyMemberCount' | 'minHealthy'
  >[];
  /** False on the free plan: the pool section shows the upgrade prompt instead. */
  poolsLicensed: boolean;
  /** The org requires pools: individual gateways are disabled with this reason. */
  requirePools: boolean;
  /** Why pools cannot be picked (a missing permission), if so. */
  poolsDisabledReason?: string;
  gatewaysDisabledReason?: string;
  allowDirect?: boolean;
  legend?: string;
}

/**
 * Where a consumer reaches its target: a pool (HA), one gateway, or directly. A native radio
 * group, so arrow keys move between choices and the browser handles focus.
 */
export function GatewayPicker({
  value,
  onChange,
  gateways,
  pools,
  poolsLicensed,
  requirePools,
  poolsDisabledReason,
  gatewaysDisabledReason,
  allowDirect = true,
  legend = 'Reach through',
}: GatewayPickerProps) {
  // Several pickers on one page must not share a radio group.
  const id = useId();
  const name = `gateway-picker-${id}`;
  const checked = (kind: GatewayChoice['kind'], id?: string) =>
    value.kind === kind && (kind === 'direct' || (value.kind !== 'direct' && value.id === id));
  const gatewayReason = requirePools
    ? 'The organization requires gateway pools: individual gateways cannot be newly attached.'
    : gatewaysDisabledReason;
  const option =
    'flex items-center gap-2 rounded px-2 py-1.5 text-sm has-[:checked]:bg-indigo-50 has-[:disabled]:text-slate-500';
  return (
    <fieldset className="flex flex-col gap-3 rounded-md border border-slate-300 p-3">
      <legend className="px-1 text-sm font-medium">{legend}</legend>
      <div role="group" aria-labelledby={`${id}-pools`}>
        <p
          id={`${id}-pools`}
          className="mb-1 text-xs font-semibold tracking-wide text-slate-700 uppercase"
        >
          Gateway pools
        </p>
        {!poolsLicensed ? (
          <p className="rounded bg-indigo-50 p-2 text-xs text-indigo-950">
            Upgrade to Enterprise to use gateway pools: a pool keeps this working when one gateway
            dies.
          </p>
        ) : !pools.length ? (
          <p className="text-xs text-slate-600">No pools yet.</p>
        ) : (
          pools.map((p) => (
            <label key={p.id} className={option} title={poolsDisabledReason}>
              <input
                type="radio"
                name={name}
                checked={checked('pool', p.id)}
                disabled={!!poolsDisabledReason}
                onChange={() => onChange({ kind: 'pool', id: p.id })}
              />
              <span className="font-medium">{p.name}</span>
              <span className="rounded bg-indigo-100 px-1 text-xs font-semibold text-indigo-900">
                HA
              </span>
              <PoolHealthBadge
                health={p.health}
                healthy={p.healthyMemberCount}
                total={p.memberCount}
                minHealthy={p.minHealthy}
              />
            </label>
          ))
        )}
        {poolsLicensed && poolsDisabledReason && (
          <p className="text-xs text-slate-600">{poolsDisabledReason}</p>
        )}
      </div>
      <div role="group" aria-labelledby={`${id}-gateways`}>
        <p
          id={`${id}-gateways`}
          className="mb-1 text-xs font-semibold tracking-wide text-slate-700 uppercase"
        >
          Individual gateways
        </p>
        {gatewayReason && <p className="mb-1 text-xs text-slate-600">{gatewayReason}</p>}
        {!gateways.length && <p className="text-xs text-slate-600">No gateways yet.</p>}
        {gateways.map((g) => (
          <label key={g.id} className={option} title={gatewayReason}>
            <input
              type="radio"
              name={name}
              checked={checked('gateway', g.id)}
              disabled={!!gatewayReason && !checked('gateway', g.id)}
              onChange={() => onChange({ kind: 'gateway', id: g.id })}
            />
            <span className="font-medium">{g.name}</span>
            <span className="text-xs text-slate-600">
              {g.health === 'healthy' || g.health === 'draining' ? 'online' : 'offline'}
            </span>
            <HealthBadge health={g.health} />
          </label>
        ))}
      </div>
      {allowDirect && (
        <label className={option}>
          <input
            type="radio"
            name={name}
            checked={checked('direct')}
            onChange={() => onChange({ kind: 'direct' })}
          />
          No gateway (direct)
        </label>
      )}
    </fieldset>
  );
}
