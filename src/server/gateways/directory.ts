import { and, eq, sql } from 'drizzle-orm';
import type { FastifyBaseLogger } from 'fastify';
import type { AuditLog } from '../audit/service.js';
import type { Db } from '../db/client.js';
import { isDatabaseUnavailable, outageLogger } from '../db/errors.js';
import { gateways } from '../db/schema.js';
import type { GatewayLive } from '../tunnel/session.js';
import type { TunnelHub } from '../tunnel/hub.js';
import type { CaStore } from './ca-store.js';
import {
  assessHealth,
  emptyVerdict,
  type GatewayHealth,
  type HealthFields,
  type HealthTiming,
  type HealthVerdict,
  type SuspectMark,
} from './health.js';
import type { GatewayRow } from './queries.js';

/** A transport failure makes a member a last resort for this long. */
export const SUSPECT_MS = 5_000;
/** Health-check results older than this are ignored (the gateway probes every second). */
const CHECK_STALE_MS = 5_000;

export interface GatewayView {
  id: string;
  name: string;
  health: GatewayHealth;
  /** Why a healthy gateway is only a last resort right now (quiet tunnel, recent failure). */
  lastResort: string | null;
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
  readonly timing: HealthTiming;
  /** Gateways that failed to open a stream recently: until when, and why (routing marks). */
  private readonly suspects = new Map<string, SuspectMark>();
  /** Connected on this node since start: the cached record may predate the first connect. */
  private readonly connectedOnce = new Set<string>();
  /** Last heard of, kept when a tunnel drops (the row's copy is written asynchronously). */
  private readonly lastSeen = new Map<string, number>();

  constructor(
    readonly hub: TunnelHub,
    readonly cas: CaStore,
    private readonly db: Db,
    private readonly audit: AuditLog,
    private readonly log: FastifyBaseLogger,
    deadAfterMs: number,
  ) {
    this.timing = { deadAfterMs, keepaliveMs: hub.keepaliveMs, checkStaleMs: CHECK_STALE_MS };
    hub.on('connected', (live) => {
      this.connectedOnce.add(live.gatewayId);
      void this.onConnected(live).catch((err: unknown) => this.fail('connected', err));
    });
    hub.on('disconnected', (gatewayId, orgId, reason) => {
      this.lastSeen.set(gatewayId, Date.now());
      void this.onDisconnected(gatewayId, orgId, reason).catch((err: unknown) =>
        this.fail('disconnected', err),
      );
    });
  }

  /** The live session of a gateway of `orgId` (another org's session is not this gateway's). */
  liveOf(orgId: string, gatewayId: string): GatewayLive | undefined {
    const live = this.hub.live(gatewayId);
    return live && live.orgId === orgId ? live : undefined;
  }

  markSuspect(gatewayId: string, reason: string, now = Date.now()): void {
    this.suspects.set(gatewayId, { until: now + SUSPECT_MS, reason });
  }

  /** Forgets expired suspect marks (they are ignored anyway; this bounds the map). */
  expireSuspects(now = Date.now()): void {
    for (const [id, { until }] of this.suspects) if (until <= now) this.suspects.delete(id);
  }

  /** Epoch ms the gateway was last heard of on this node, if it was. */
  lastSeenOf(gatewayId: string, live: GatewayLive | undefined): number | undefined {
    return live ? live.lastFrameAt : this.lastSeen.get(gatewayId);
  }

  /**
   * The one health function (health.ts) fed with everything this node knows of a gateway:
   * `everConnected` from its record, plus its live session, suspect mark and health-check
   * target (a pool's, or null). Allocation-free unless `explain`.
   */
  assess<V extends HealthFields>(
    into: V,
    orgId: string,
    member: { gatewayId: string; everConnected: boolean },
    checkTarget: string | null,
    now: number,
    explain: boolean,
    live: GatewayLive | undefined = this.liveOf(orgId, member.gatewayId),
  ): V & HealthVerdict {
    const current = live && live.orgId === orgId ? live : undefined;
    const everConnected =
      member.everConnected || current !== undefined || this.connectedOnce.has(member.gatewayId);
    const suspect = this.suspects.size ? this.suspects.get(member.gatewayId) : undefined;
    return assessHealth(
      into,
      this.timing,
      now,
      everConnected,
      current,
      checkTarget,
      suspect,
      explain,
    );
  }

  /** Health of a gateway outside any pool, explained (API, metrics, event stream). */
  healthOf(
    record: { orgId: string; gatewayId: string; everConnected: boolean },
    now = Date.now(),
    checkTarget: string | null = null,
  ): HealthVerdict {
    return this.assess(emptyVerdict(), record.orgId, record, checkTarget, now, true);
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
    const current = this.liveOf(row.orgId, row.id);
    const verdict = this.healthOf(recordOf(row), now);
    const lastSeen = this.lastSeenOf(row.id, current);
    return {
      id: row.id,
      name: row.name,
      // Outside a pool there is no health-check target, so never `degraded`.
      health: verdict.health as GatewayHealth,
      lastResort: verdict.lastResort,
      lastSeenAt: latest(lastSeen, row.lastSeenAt)?.toISOString() ?? null,
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
    const verdict = emptyVerdict();
    for (const row of rows) {
      const { health } = this.assess(verdict, row.orgId, recordOf(row), null, now, false);
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
    // The tunnel itself does not need the database; during an outage only the record is late.
    if (isDatabaseUnavailable(err)) this.outage(`recording gateway ${what}`, err);
    else this.log.error({ err }, `recording gateway ${what} failed`);
  }

  private readonly outage = outageLogger((fields, message) => this.log.warn(fields, message));
}

/** What the health function needs of a gateway row. */
export const recordOf = (row: Pick<GatewayRow, 'id' | 'orgId' | 'status'>) => ({
  orgId: row.orgId,
  gatewayId: row.id,
  everConnected: row.status !== 'never-connected',
});

function latest(live: number | undefined, stored: Date | null): Date | null {
  if (live === undefined) return stored;
  return stored && stored.getTime() > live ? stored : new Date(live);
}
