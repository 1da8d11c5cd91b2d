/**
 * Gateway health, DESIGN §4: one pure function the API returns and nothing else recomputes.
 * Inputs are the persisted facts (was it ever connected, when was it last seen) and the tunnel
 * hub's in-memory live state; no I/O, so it is unit-tested without servers.
 */
import type { GatewayLive } from '../tunnel/session.js';

export type GatewayHealth = 'healthy' | 'draining' | 'unreachable' | 'never-connected';

export const GATEWAY_HEALTH_VALUES: readonly GatewayHealth[] = [
  'healthy',
  'draining',
  'unreachable',
  'never-connected',
];

export interface GatewayHealthRecord {
  /** Any tunnel was ever up for this gateway (persisted on the first connect). */
  everConnected: boolean;
  lastSeenAt: Date | null;
}

function toMs(now: Date | number): number {
  return typeof now === 'number' ? now : now.getTime();
}

/**
 * - healthy: tunnel up, last frame less than `deadAfterMs` ago, not draining;
 * - draining: tunnel up (and not silent), takes no new streams;
 * - unreachable: was connected, tunnel gone or silent for `deadAfterMs`;
 * - never-connected: enrolled, never seen ("Pending" in the UI), not an error.
 * A silent tunnel counts as unreachable even before the hub has torn it down, so the answer does
 * not depend on when the hub's timer last ran.
 */
export function computeHealth(
  record: GatewayHealthRecord,
  live: GatewayLive | undefined,
  now: Date | number,
  deadAfterMs: number,
): GatewayHealth {
  if (live) {
    if (toMs(now) - live.lastFrameAt >= deadAfterMs) return 'unreachable';
    return live.draining ? 'draining' : 'healthy';
  }
  return record.everConnected || record.lastSeenAt !== null ? 'unreachable' : 'never-connected';
}

export interface GatewayHealthView {
  health: GatewayHealth;
  /** Live: the last frame received; otherwise what was persisted. */
  lastSeenAt: Date | null;
  connectedSince: Date | null;
  rttMs: number | null;
  activeStreams: number;
  version: string | null;
  labels: Record<string, string>;
  draining: boolean;
  remoteAddress: string | null;
}

/** Everything about a gateway's health the API shows, from the same inputs as computeHealth. */
export function healthView(
  record: GatewayHealthRecord,
  live: GatewayLive | undefined,
  now: Date | number,
  deadAfterMs: number,
): GatewayHealthView {
  const health = computeHealth(record, live, now, deadAfterMs);
  if (!live) {
    return {
      health,
      lastSeenAt: record.lastSeenAt,
      connectedSince: null,
      rttMs: null,
      activeStreams: 0,
      version: null,
      labels: {},
      draining: false,
      remoteAddress: null,
    };
  }
  return {
    health,
    lastSeenAt: new Date(live.lastFrameAt),
    connectedSince: live.connectedSince,
    rttMs: live.rttMs,
    activeStreams: live.activeStreams,
    version: live.version,
    labels: { ...live.labels },
    draining: live.draining,
    remoteAddress: live.remoteAddress,
  };
}
