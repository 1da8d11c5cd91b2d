import { and, eq, sql } from 'drizzle-orm';
import type { FastifyBaseLogger } from 'fastify';
import type { AuditLog } from '../audit/service.js';
import type { Db } from '../db/client.js';
import { gateways } from '../db/schema.js';
import type { GatewayLive } from '../tunnel/session.js';
import type { TunnelHub } from '../tunnel/hub.js';
import type { CaStore } from './ca-store.js';
import { computeHealth, type GatewayHealth } from './health.js';
import type { GatewayRow } from './queries.js';

export interface GatewayView {
  id: string;
  name: string;
  health: GatewayHealth;
  lastSeenAt: string | null;
  connectedSince: string | null;
  rttMs: number | null;
  activeStreams: number;
  version: string | null;
  /** Labels the agent reports (`--label`), overridden by labels set through the API. */
  labels: Record<string, string>;
  configuredLabels: Record<string, string>;
  draining: boolean;
  remoteAddress: string | null;
  certificateExpiresAt: string;
  createdAt: string;
  updatedAt: string;
}

/**
 * The platform's view of its gateways: glues the tunnel hub (live truth, in memory) to the
 * database (identity, transitions). Transitions are persisted and audited; pings are not.
 */
export class GatewayDirectory {
  /** host:port gateways dial; known once the tunnel listener is bound. */
  tunnelAddress = '';

  constructor(
    readonly hub: TunnelHub,
    readonly cas: CaStore,
    private readonly db: Db,
    private readonly audit: AuditLog,
    private readonly log: FastifyBaseLogger,
    private readonly deadAfterMs: number,
  ) {
    hub.on(
      'connected',
      (live) => void this.onConnected(live).catch((err: unknown) => this.fail('connected', err)),
    );
    hub.on(
      'disconnected',
      (gatewayId, orgId, reason) =>
        void this.onDisconnected(gatewayId, orgId, reason).catch((err: unknown) =>
          this.fail('disconnected', err),
        ),
    );
  }

  /** The hub's identity check: a certificate is good while its gateway exists with that fingerprint. */
  async identify(info: { orgId: string; gatewayId: string; fingerprint256: string }) {
    const [row] = await this.db
      .select({
        id: gateways.id,
        orgId: gateways.orgId,
        name: gateways.name,
        fingerprint: gateways.certFingerprint,
      })
      .from(gateways)
      .where(and(eq(gateways.orgId, info.orgId), eq(gateways.id, info.gatewayId)));
    if (!row || row.fingerprint !== info.fingerprint256) return null;
    return { orgId: row.orgId, gatewayId: row.id, name: row.name };
  }

  view(row: GatewayRow, now = Date.now()): GatewayView {
    const live = this.hub.live(row.id);
    const current = live && live.orgId === row.orgId ? live : undefined;
    const health = computeHealth(
      { everConnected: row.status !== 'never-connected', lastSeenAt: row.lastSeenAt },
      current,
      now,
      this.deadAfterMs,
    );
    const lastSeen = current ? new Date(current.lastFrameAt) : row.lastSeenAt;
    return {
      id: row.id,
      name: row.name,
      health,
      lastSeenAt: lastSeen?.toISOString() ?? null,
      connectedSince: current?.connectedSince.toISOString() ?? null,
      rttMs: current?.rttMs == null ? null : Math.round(current.rttMs * 1000) / 1000,
      activeStreams: current?.activeStreams ?? 0,
      version: current?.version ?? row.version,
      labels: { ...(current?.labels ?? {}), ...row.labels },
      configuredLabels: row.labels,
      draining: current?.draining ?? row.draining,
      remoteAddress: current?.remoteAddress ?? null,
      certificateExpiresAt: row.certExpiresAt.toISOString(),
      createdAt: row.createdAt.toISOString(),
      updatedAt: row.updatedAt.toISOString(),
    };
  }

  /** Gateway counts by health across all orgs, for /metrics. */
  async healthCounts(): Promise<Record<string, number>> {
    const rows = await this.db.select().from(gateways);
    const counts: Record<string, number> = {};
    const now = Date.now();
    for (const row of rows) {
      const { health } = this.view(row, now);
      counts[health] = (counts[health] ?? 0) + 1;
    }
    return counts;
  }

  /** Drops a gateway's tunnel at once (delete, re-enrollment, revocation). */
  disconnect(gatewayId: string, reason: string): void {
    this.hub.disconnect(gatewayId, reason);
  }

  private async onConnected(live: GatewayLive): Promise<void> {
    const [before] = await this.db
      .select({ status: gateways.status, draining: gateways.draining, name: gateways.name })
      .from(gateways)
      .where(and(eq(gateways.orgId, live.orgId), eq(gateways.id, live.gatewayId)));
    if (!before) return;
    // A drain asked for through the API outlives reconnects.
    if (before.draining) this.hub.setDraining(live.gatewayId, true);
    const now = new Date();
    await this.db
      .update(gateways)
      .set({
        status: 'connected',
        connectedAt: now,
        lastSeenAt: now,
        version: live.version ?? sql`${gateways.version}`,
      })
      .where(and(eq(gateways.orgId, live.orgId), eq(gateways.id, live.gatewayId)));
    if (before.status !== 'connected') {
      await this.audit.record(
        { type: 'gateway', id: live.gatewayId, name: before.name },
        'gateway.connected',
        {
          gatewayId: live.gatewayId,
          name: before.name,
          remoteAddress: live.remoteAddress,
          reconnect: before.status === 'disconnected',
        },
        { orgId: live.orgId, ip: live.remoteAddress },
      );
    }
    this.log.info(
      { gatewayId: live.gatewayId, name: before.name, remoteAddress: live.remoteAddress },
      'gateway connected',
    );
  }

  private async onDisconnected(gatewayId: string, orgId: string, reason: string): Promise<void> {
    // A replaced session is followed by a new one at once; only record a real loss.
    if (this.hub.live(gatewayId)) return;
    const now = new Date();
    const [row] = await this.db
      .update(gateways)
      .set({ status: 'disconnected', disconnectedAt: now, lastSeenAt: now })
      .where(
        and(
          eq(gateways.orgId, orgId),
          eq(gateways.id, gatewayId),
          eq(gateways.status, 'connected'),
        ),
      )
      .returning({ name: gateways.name });
    if (!row) return;
    await this.audit.record(
      { type: 'gateway', id: gatewayId, name: row.name },
      'gateway.disconnected',
      { gatewayId, name: row.name, reason },
      { orgId },
    );
    this.log.warn({ gatewayId, name: row.name, reason }, 'gateway disconnected');
  }

  private fail(what: string, err: unknown): void {
    this.log.error({ err }, `recording gateway ${what} failed`);
  }
}
