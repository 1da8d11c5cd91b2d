import { useId, useState } from 'react';
import type { Gateway, GatewayHealth, Pool } from '../api/types';
import { HealthBadge, PoolHealthBadge } from './HealthBadge';
import { Input, matches } from './ui';

/** `none`: nothing chosen yet (a new form), which the form refuses to send. */
export type GatewayChoice =
  | { kind: 'pool'; id: string }
  | { kind: 'gateway'; id: string }
  | { kind: 'direct' }
  | { kind: 'none' };

type PickerPool = Pick<
  Pool,
  'id' | 'name' | 'health' | 'memberCount' | 'healthyMemberCount' | 'minHealthy'
>;

/**
 * What a new form starts with: the only pool when there is exactly one (the common case, and
 * the choice that survives a gateway dying), else nothing, so the user picks. Never "direct":
 * the platform refuses it unless its operator allowed direct targets.
 */
export function defaultChoice(pools: { id: string }[], poolsUsable: boolean): GatewayChoice {
  return poolsUsable && pools.length === 1 && pools[0]
    ? { kind: 'pool', id: pools[0].id }
    : { kind: 'none' };
}

export interface GatewayPickerProps {
  value: GatewayChoice;
  onChange: (v: GatewayChoice) => void;
  gateways: Pick<Gateway, 'id' | 'name' | 'health'>[];
  pools: PickerPool[];
  /** False on the free plan: the pool section shows the upgrade prompt instead. */
  poolsLicensed: boolean;
  /** The org requires pools: individual gateways are disabled with this reason. */
  requirePools: boolean;
  /** Why pools cannot be picked (a missing permission), if so. */
  poolsDisabledReason?: string;
  gatewaysDisabledReason?: string;
  allowDirect?: boolean;
  legend?: string;
  /** The platform's refusal of the choice (`gatewayId`, `gatewayPoolId`), shown here. */
  error?: string;
}

// Online first: a gateway that is up is the one worth picking; offline ones stay reachable.
const RANK: Record<GatewayHealth, number> = {
  healthy: 0,
  degraded: 1,
  draining: 2,
  unreachable: 3,
  'never-connected': 4,
};

/** With more choices than this the picker offers a search box. */
const SEARCH_FROM = 8;

/**
 * Where a consumer reaches its target: a pool (HA), one gateway, or directly. A native radio
 * group, so arrow keys move between choices and the browser handles focus. Pools come first,
 * then gateways online first; the list scrolls inside a bounded box and a search box narrows
 * it, so a fleet of hundreds stays one screen tall. The chosen option stays listed whatever
 * is typed.
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
  error,
}: GatewayPickerProps) {
  // Several pickers on one page must not share a radio group.
  const id = useId();
  const name = `gateway-picker-${id}`;
  const [q, setQ] = useState('');
  const checked = (kind: GatewayChoice['kind'], id?: string) =>
    value.kind === kind &&
    (kind === 'direct' || ((value.kind === 'pool' || value.kind === 'gateway') && value.id === id));
  const gatewayReason = requirePools
    ? 'The organization requires gateway pools: individual gateways cannot be newly attached.'
    : gatewaysDisabledReason;
  const shownPools = pools.filter((p) => checked('pool', p.id) || matches(q, p.name));
  const shownGateways = gateways
    .filter((g) => checked('gateway', g.id) || matches(q, g.name, g.health))
    .sort((a, b) => RANK[a.health] - RANK[b.health] || a.name.localeCompare(b.name));
  const searchable = (poolsLicensed ? pools.length : 0) + gateways.length > SEARCH_FROM;
  const option =
    'flex items-center gap-2 rounded px-2 py-1.5 text-sm has-[:checked]:bg-indigo-50 has-[:disabled]:text-slate-500';
  const errId = `${id}-err`;
  return (
    <fieldset
      className="flex min-w-0 flex-col gap-2 rounded-md border border-slate-300 p-3 aria-invalid:border-red-600"
      aria-invalid={!!error || undefined}
      aria-describedby={error ? errId : undefined}
    >
      <legend className="px-1 text-sm font-medium">{legend}</legend>
      {value.kind === 'none' && (
        <p className="text-xs text-slate-600">Choose a pool or a gateway.</p>
      )}
      {searchable && (
        <Input
          type="search"
          aria-label={`Search pools and gateways (${legend})`}
          placeholder="Search pools and gateways"
          value={q}
          autoComplete="off"
          onChange={(e) => setQ(e.target.value)}
          // Inside the form: Enter narrows the list, it does not submit the form.
          onKeyDown={(e) => e.key === 'Enter' && e.preventDefault()}
        />
      )}
      <div className="flex max-h-72 flex-col gap-3 overflow-y-auto" data-testid="picker-options">
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
          ) : !shownPools.length ? (
            <p className="text-xs text-slate-600">No pool matches “{q.trim()}”.</p>
          ) : (
            shownPools.map((p) => (
              <label key={p.id} className={option} title={poolsDisabledReason}>
                <input
                  type="radio"
                  name={name}
                  checked={checked('pool', p.id)}
                  disabled={!!poolsDisabledReason}
                  onChange={() => onChange({ kind: 'pool', id: p.id })}
                />
                <span className="font-medium [overflow-wrap:anywhere]">{p.name}</span>
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
          {!gateways.length ? (
            <p className="text-xs text-slate-600">No gateways yet.</p>
          ) : (
            !shownGateways.length && (
              <p className="text-xs text-slate-600">No gateway matches “{q.trim()}”.</p>
            )
          )}
          {shownGateways.map((g) => (
            <label key={g.id} className={option} title={gatewayReason}>
              <input
                type="radio"
                name={name}
                checked={checked('gateway', g.id)}
                disabled={!!gatewayReason && !checked('gateway', g.id)}
                onChange={() => onChange({ kind: 'gateway', id: g.id })}
              />
              <span className="font-medium [overflow-wrap:anywhere]">{g.name}</span>
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
            <span className="text-xs text-slate-600">
              only where the platform&apos;s operator allows direct targets
            </span>
          </label>
        )}
      </div>
      {error && (
        <p id={errId} role="alert" className="text-xs [overflow-wrap:anywhere] text-red-700">
          {error}
        </p>
      )}
    </fieldset>
  );
}
