/**
 * Gateway and pool-member health, DESIGN §4: the one pure function every outlet reads (the
 * gateways API, pool summaries and details, selection candidates, failover errors, Kubernetes
 * auth's outage check, metrics, the event stream). Nothing else derives health.
 *
 * Inputs: the persisted record (was it ever connected), the tunnel hub's live state, the pool's
 * health-check target and results, the suspect mark and now. No I/O: unit-tested without
 * servers. It writes into a caller-owned object so selection can reuse one per member and
 * allocate nothing per request.
 */
import { quietFor } from '../tunnel/liveness.js';
import type { GatewayLive } from '../tunnel/session.js';

export type GatewayHealth = 'healthy' | 'draining' | 'unreachable' | 'never-connected';
/** `degraded` only for a pool member: alive but failing its pool's health-check target. */
export type MemberHealth = GatewayHealth | 'degraded';

export const GATEWAY_HEALTH_VALUES = [
  'healthy',
  'draining',
  'unreachable',
  'never-connected',
] as const satisfies readonly GatewayHealth[];
export const MEMBER_HEALTH_VALUES = [
  ...GATEWAY_HEALTH_VALUES,
  'degraded',
] as const satisfies readonly MemberHealth[];

export interface HealthCheckObservation {
  target: string;
  ok: boolean;
  error?: string;
  checkedAt: number;
}

/** A recent transport failure: the member is a last resort until `until`. */
export interface SuspectMark {
  until: number;
  reason: string;
}

export interface HealthTiming {
  deadAfterMs: number;
  keepaliveMs: number;
  /** Health-check results older than this are ignored (gateways probe every second). */
  checkStaleMs: number;
}

/** What the function writes. Selection candidates carry the same fields. */
export interface HealthVerdict {
  health: MemberHealth;
  /** `health` is `healthy`: the member may be selected. */
  healthy: boolean;
  /** Why it may not be selected (its health, or the failed health check); undefined when healthy. */
  unhealthyReason: string | undefined;
  /** Its tunnel is silent past quietAfterMs (tunnel/liveness.ts): a last resort. */
  quiet: boolean;
  /** Until when a recent failure makes it a last resort (only while healthy and marked). */
  suspectUntil: number | undefined;
  /** Why a healthy member is only a last resort (written only when asked to explain). */
  lastResort: string | null;
}

/** Any object the function can write into (selection candidates have these fields optional). */
export interface HealthFields {
  health?: MemberHealth;
  healthy: boolean;
  unhealthyReason?: string | undefined;
  quiet?: boolean | undefined;
  suspectUntil?: number | undefined;
  lastResort?: string | null | undefined;
}

/** A fresh verdict to write into (one per outlet object; selection keeps its candidates). */
export const emptyVerdict = (): HealthVerdict => ({
  health: 'never-connected',
  healthy: false,
  unhealthyReason: undefined,
  quiet: false,
  suspectUntil: undefined,
  lastResort: null,
});

/**
 * Whether a member can reach its pool's health-check target. No result yet counts as
 * reachable (a member is not punished in its first seconds); a stale result does not count.
 */
const REACHABLE = Object.freeze({ ok: true as const });

export function checkVerdict(
  target: string | null,
  results: readonly HealthCheckObservation[] | undefined,
  now: number,
  staleAfterMs: number,
): { ok: true } | { ok: false; reason: string } {
  if (!target || !results) return REACHABLE;
  // A plain loop: this runs per member per request in pools with a health-check target.
  let result: HealthCheckObservation | undefined;
  for (let i = 0; i < results.length; i++) {
    if ((results[i] as HealthCheckObservation).target === target) {
      result = results[i];
      break;
    }
  }
  if (!result || result.ok || now - result.checkedAt > staleAfterMs) return REACHABLE;
  return { ok: false, reason: `cannot reach ${target}: ${result.error ?? 'connect failed'}` };
}

/**
 * - healthy: tunnel up, last frame less than `deadAfterMs` ago, not draining;
 * - draining: tunnel up (and not silent), takes no new streams;
 * - unreachable: was connected, tunnel gone or silent for `deadAfterMs`;
 * - never-connected: enrolled, never seen ("Pending" in the UI), not an error;
 * - degraded: healthy but failing `checkTarget` (pool members only).
 * A silent tunnel counts as unreachable even before the hub has torn it down, so the answer does
 * not depend on when the hub's timer last ran. Quiet and suspect are routing marks on a healthy
 * member, not health; with `explain` the verdict says why such a member is a last resort.
 *
 * `live` must already be the gateway's own org's session (callers drop another org's).
 */
export function assessHealth<V extends HealthFields>(
  into: V,
  timing: HealthTiming,
  now: number,
  everConnected: boolean,
  live: GatewayLive | undefined,
  checkTarget: string | null,
  suspect: SuspectMark | undefined,
  explain: boolean,
): V & HealthVerdict {
  const out = into as V & HealthVerdict;
  out.healthy = false;
  out.quiet = false;
  out.suspectUntil = undefined;
  out.lastResort = null;
  let health: GatewayHealth;
  if (live) {
    if (now - live.lastFrameAt >= timing.deadAfterMs) health = 'unreachable';
    else health = live.draining ? 'draining' : 'healthy';
  } else health = everConnected ? 'unreachable' : 'never-connected';
  if (health !== 'healthy' || !live) {
    out.health = health;
    out.unhealthyReason = health;
    return out;
  }
  if (checkTarget) {
    const verdict = checkVerdict(checkTarget, live.healthChecks, now, timing.checkStaleMs);
    if (!verdict.ok) {
      out.health = 'degraded';
      out.unhealthyReason = verdict.reason;
      return out;
    }
  }
  out.health = 'healthy';
  out.healthy = true;
  out.unhealthyReason = undefined;
  const silent = quietFor(live, now, timing.keepaliveMs, timing.deadAfterMs);
  out.quiet = silent !== null;
  if (suspect && suspect.until > now) out.suspectUntil = suspect.until;
  if (explain) {
    if (silent !== null)
      out.lastResort = `tunnel quiet for ${silent} ms (a keepalive went unanswered)`;
    else if (suspect && out.suspectUntil !== undefined)
      out.lastResort = `recent failure: ${suspect.reason}; a last resort until ${new Date(suspect.until).toISOString()}`;
  }
  return out;
}
