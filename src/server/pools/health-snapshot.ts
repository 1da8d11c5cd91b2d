/**
 * The live health of an org's gateways and pools, from memory (no I/O), as the one health
 * function computes it (gateways/health.ts). The event stream (GET /api/v1/events) diffs
 * successive snapshots and pushes what changed; the UI shows these words, never its own.
 */
import type { GatewayHealth } from '../gateways/health.js';
import type { PoolHealth } from './pool-health.js';

export interface GatewayHealthEntry {
  id: string;
  name: string;
  health: GatewayHealth | 'degraded';
  /** Why a healthy gateway is only a last resort right now (quiet tunnel, recent failure). */
  lastResort: string | null;
  rttMs: number | null;
  activeStreams: number;
  lastSeenAt: string | null;
}

export interface PoolMemberHealthEntry {
  gatewayId: string;
  /** The member's health in this pool (`degraded`: failing the pool's health check). */
  health: GatewayHealth | 'degraded';
  lastResort: string | null;
  reason: string | null;
}

export interface PoolHealthEntry {
  id: string;
  name: string;
  health: PoolHealth;
  memberCount: number;
  healthyMemberCount: number;
  minHealthy: number;
  members: PoolMemberHealthEntry[];
}

export interface HealthSnapshot {
  gateways: GatewayHealthEntry[];
  pools: PoolHealthEntry[];
}

/** Implemented by PoolRuntime (`ctx.poolRuntime.healthSnapshot(orgId)`). */
export interface HealthSource {
  healthSnapshot(orgId: string): Promise<HealthSnapshot>;
}
