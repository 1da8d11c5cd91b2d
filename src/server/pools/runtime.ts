import { eq } from 'drizzle-orm';
import type { FastifyBaseLogger } from 'fastify';
import type { AuditLog } from '../audit/service.js';
import type { Db } from '../db/client.js';
import { gatewayPoolMemberships, gatewayPools, gateways } from '../db/schema.js';
import type { PlatformMetrics } from '../gateways/metrics.js';
import type { GatewayDirectory } from '../gateways/directory.js';
import { computeHealth } from '../gateways/health.js';
import { quietFor } from '../tunnel/liveness.js';
import type { GatewayLive } from '../tunnel/session.js';
import { notFound } from '../http/errors.js';
import {
  runThroughPool,
  type FailoverDeps,
  type FailoverOptions,
  type GatewayRef,
  type Served,
  type Target,
} from './failover.js';
import { belowFloor, checkVerdict, poolHealth, type PoolHealth } from './pool-health.js';
import type { Candidate } from './selection.js';
import type { Duplex } from 'node:stream';

/** A transport failure makes a member a last resort for this long. */
const SUSPECT_MS = 5_000;
/** Health-check results older than this are ignored (the gateway probes every second). */
const CHECK_STALE_MS = 5_000;
const EVALUATE_EVERY_MS = 250;

interface CachedMember {
  gatewayId: string;
  name: string;
  weight: number;
  priority: number;
  labels: Record<string, string>;
  everConnected: boolean;
  /** The gateway-reported labels its candidate's merged labels were built from. */
  mergedFrom?: Record<string, string>;
}

const NO_LABELS: Record<string, string> = Object.freeze({});

/** Candidates with the static fields of each member; the live ones are filled by refresh. */
function shellsFor(members: readonly CachedMember[]): Candidate[] {
  return members.map((m) => ({
    gatewayId: m.gatewayId,
    name: m.name,
    weight: m.weight,
    priority: m.priority,
    healthy: false,
    unhealthyReason: undefined,
    outstanding: 0,
    labels: m.labels,
    suspectUntil: undefined,
    quiet: false,
  }));
}

export interface CachedPool {
  id: string;
  orgId: string;
  name: string;
  minHealthy: number;
  healthCheckTarget: string | null;
  members: CachedMember[];
  /** One per member, same order, built on first selection and refreshed in place. */
  candidates?: Candidate[];
  /** Each member's live state, looked up again only when the hub's sessions change. */
  lives?: (GatewayLive | undefined)[];
  livesGeneration?: number;
}

export interface MemberState {
  health: ReturnType<typeof computeHealth> | 'degraded';
  healthy: boolean;
  reason?: string;
  healthCheck: { target: string; ok: boolean; error?: string; checkedAt: string } | null;
  /** Why a healthy member is used only as a last resort right now (quiet tunnel, recent failure). */
  suspect: string | null;
  /** The tunnel is silent past quietAfterMs (tunnel/liveness.ts). */
  quiet: boolean;
}

/**
 * Pools in memory: membership is cached and reloaded when it changes, so selecting a member
 * costs no database or network round trip. Live member health comes from the tunnel hub.
 * Note: the cache is per platform node; another node's membership change reaches this one
 * at its next reload (DESIGN §4: the live truth is on the node holding the tunnel).
 */
export class PoolRuntime {
  private pools = new Map<string, CachedPool>();
  private gatewayNames = new Map<
    string,
    { orgId: string; name: string; labels: Record<string, string> }
  >();
  private loading: Promise<void> | undefined;
  private stale = true;
  /** Members that failed to open a stream recently: until when, and why. */
  private readonly suspects = new Map<string, { until: number; reason: string }>();
  private readonly connectedOnce = new Set<string>();
  private readonly degraded = new Map<string, boolean>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly db: Db,
    private readonly registry: GatewayDirectory,
    private readonly audit: AuditLog,
    private readonly metrics: PlatformMetrics,
    private readonly log: FastifyBaseLogger,
    private readonly deadAfterMs: number,
  ) {
    this.timer = setInterval(
      () =>
        void this.evaluate().catch((err: unknown) =>
          this.log.error({ err }, 'pool evaluation failed'),
        ),
      EVALUATE_EVERY_MS,
    );
    this.timer.unref();
    registry.hub.on('connected', (live) => {
      // The cache may predate this gateway's first connection; health must say unreachable, not pending, once it drops.
      this.connectedOnce.add(live.gatewayId);
      this.pushHealthChecks(live.gatewayId);
    });
  }

  close(): void {
    clearInterval(this.timer);
  }

  /** Call after any change to pools, memberships or gateways. */
  invalidate(): void {
    this.stale = true;
  }

  async ensureLoaded(): Promise<void> {
    if (!this.stale) return;
    this.loading ??= this.reload().finally(() => (this.loading = undefined));
    await this.loading;
  }

  private async reload(): Promise<void> {
    this.stale = false;
    const [poolRows, memberRows, gatewayRows] = await Promise.all([
      this.db.select().from(gatewayPools),
      this.db.select().from(gatewayPoolMemberships),
      this.db
        .select({
          id: gateways.id,
          orgId: gateways.orgId,
          name: gateways.name,
          labels: gateways.labels,
          status: gateways.status,
        })
        .from(gateways),
    ]);
    const gws = new Map(gatewayRows.map((g) => [g.id, g]));
    const pools = new Map<string, CachedPool>();
    for (const p of poolRows) {
      pools.set(p.id, {
        id: p.id,
        orgId: p.orgId,
        name: p.name,
        minHealthy: p.minHealthy,
        healthCheckTarget: p.healthCheckTarget,
        members: [],
      });
    }
    for (const m of memberRows) {
      const pool = pools.get(m.poolId);
      const gw = gws.get(m.gatewayId);
      if (!pool || !gw) continue;
      pool.members.push({
        gatewayId: gw.id,
        name: gw.name,
        weight: m.weight,
        priority: m.priority,
        labels: gw.labels,
        everConnected: gw.status !== 'never-connected',
      });
    }
    const before = this.pools;
    this.pools = pools;
    this.gatewayNames = new Map(
      gatewayRows.map((g) => [g.id, { orgId: g.orgId, name: g.name, labels: g.labels }]),
    );
    for (const id of before.keys()) if (!pools.has(id)) this.degraded.delete(id);
    // Health-check targets may have changed: tell every connected gateway its current list.
    for (const g of gatewayRows) if (this.registry.hub.live(g.id)) this.pushHealthChecks(g.id);
  }

  pool(orgId: string, poolId: string): CachedPool | undefined {
    const p = this.pools.get(poolId);
    return p && p.orgId === orgId ? p : undefined;
  }

  healthCheckTargetsFor(gatewayId: string): string[] {
    const targets = new Set<string>();
    for (const p of this.pools.values()) {
      if (p.healthCheckTarget && p.members.some((m) => m.gatewayId === gatewayId))
        targets.add(p.healthCheckTarget);
    }
    return [...targets];
  }

  private pushHealthChecks(gatewayId: string): void {
    this.registry.hub.setHealthCheckTargets(gatewayId, this.healthCheckTargetsFor(gatewayId));
  }

  /**
   * Writes a member's live selectability into `into` and returns its health: gateway health
   * (DESIGN §4) plus the pool's health check and the quiet-tunnel rule. Allocation-light on
   * purpose: selection calls it for every member on every request.
   */
  private assess(
    pool: Pick<CachedPool, 'healthCheckTarget' | 'orgId'>,
    member: { gatewayId: string; everConnected: boolean },
    now: number,
    into: Pick<Candidate, 'healthy' | 'unhealthyReason' | 'quiet'>,
    live = this.registry.hub.live(member.gatewayId),
  ): MemberState['health'] {
    const current = live && live.orgId === pool.orgId ? live : undefined;
    const everConnected =
      member.everConnected || !!current || this.connectedOnce.has(member.gatewayId);
    const health = computeHealth(
      { everConnected, lastSeenAt: null },
      current,
      now,
      this.deadAfterMs,
    );
    into.healthy = false;
    into.quiet = false;
    if (health !== 'healthy') {
      into.unhealthyReason = health;
      return health;
    }
    if (pool.healthCheckTarget) {
      const verdict = checkVerdict(
        pool.healthCheckTarget,
        current?.healthChecks,
        now,
        CHECK_STALE_MS,
      );
      if (!verdict.ok) {
        into.unhealthyReason = verdict.reason;
        return 'degraded';
      }
    }
    into.healthy = true;
    into.unhealthyReason = undefined;
    into.quiet =
      !!current && quietFor(current, now, this.registry.hub.keepaliveMs, this.deadAfterMs) !== null;
    return health;
  }

  /** Live state of one member of one pool, as the API shows it. */
  memberState(
    pool: Pick<CachedPool, 'healthCheckTarget' | 'orgId'>,
    member: { gatewayId: string; everConnected: boolean },
    now = Date.now(),
  ): MemberState {
    const verdict: Pick<Candidate, 'healthy' | 'unhealthyReason' | 'quiet'> = { healthy: false };
    const live = this.registry.hub.live(member.gatewayId);
    const health = this.assess(pool, member, now, verdict, live);
    const result =
      pool.healthCheckTarget && live?.orgId === pool.orgId
        ? live.healthChecks.find((r) => r.target === pool.healthCheckTarget)
        : undefined;
    const healthCheck = result
      ? {
          target: result.target,
          ok: result.ok,
          ...(result.error ? { error: result.error } : {}),
          checkedAt: new Date(result.checkedAt).toISOString(),
        }
      : null;
    const marked = this.suspects.get(member.gatewayId);
    const suspect = !verdict.healthy
      ? null
      : verdict.quiet
        ? `tunnel quiet for ${now - (live?.lastFrameAt ?? now)} ms (a keepalive went unanswered)`
        : marked && marked.until > now
          ? `recent failure: ${marked.reason}; a last resort until ${new Date(marked.until).toISOString()}`
          : null;
    return {
      health,
      healthy: verdict.healthy,
      ...(verdict.unhealthyReason !== undefined ? { reason: verdict.unhealthyReason } : {}),
      healthCheck,
      suspect,
      quiet: !!verdict.quiet,
    };
  }

  summary(
    pool: CachedPool,
    now = Date.now(),
  ): { memberCount: number; healthyMemberCount: number; health: PoolHealth } {
    // Only selectability is needed here (every 250 ms, every pool): not the API view.
    const verdict: Pick<Candidate, 'healthy' | 'unhealthyReason' | 'quiet'> = { healthy: false };
    let healthy = 0;
    for (const m of pool.members) {
      this.assess(pool, m, now, verdict);
      if (verdict.healthy) healthy += 1;
    }
    return {
      memberCount: pool.members.length,
      healthyMemberCount: healthy,
      health: poolHealth(pool.members.length, healthy, pool.minHealthy),
    };
  }

  /**
   * The members of a reference as selection candidates, refreshed in place: a pool keeps one
   * Candidate per member for as long as its cached membership lives, so a request allocates
   * nothing per member: with 1,000 members it costs tens of microseconds, not hundreds.
   */
  candidatesFor(orgId: string, ref: GatewayRef): { label: string; members: Candidate[] } {
    const now = Date.now();
    if ('gatewayId' in ref) {
      const gw = this.gatewayNames.get(ref.gatewayId);
      if (!gw || gw.orgId !== orgId) throw notFound(`Gateway ${ref.gatewayId}`);
      const member: CachedMember = {
        gatewayId: ref.gatewayId,
        name: gw.name,
        weight: 1,
        priority: 0,
        labels: gw.labels,
        everConnected: true,
      };
      const [candidate] = shellsFor([member]);
      const live = this.registry.hub.live(member.gatewayId);
      this.refresh({ orgId, healthCheckTarget: null }, member, candidate as Candidate, now, live);
      return { label: `gateway "${gw.name}"`, members: [candidate as Candidate] };
    }
    const pool = this.pool(orgId, ref.gatewayPoolId);
    if (!pool) throw notFound(`Gateway pool ${ref.gatewayPoolId}`);
    pool.candidates ??= shellsFor(pool.members);
    const hub = this.registry.hub;
    if (pool.lives === undefined || pool.livesGeneration !== hub.sessionsGeneration) {
      pool.lives = pool.members.map((m) => hub.live(m.gatewayId));
      pool.livesGeneration = hub.sessionsGeneration;
    }
    for (let i = 0; i < pool.members.length; i++) {
      this.refresh(
        pool,
        pool.members[i] as CachedMember,
        pool.candidates[i] as Candidate,
        now,
        pool.lives[i],
      );
    }
    return { label: `gateway pool "${pool.name}"`, members: pool.candidates };
  }

  private refresh(
    pool: Pick<CachedPool, 'healthCheckTarget' | 'orgId'>,
    m: CachedMember,
    c: Candidate,
    now: number,
    live: GatewayLive | undefined,
  ): void {
    this.assess(pool, m, now, c, live);
    c.outstanding = live?.activeStreams ?? 0;
    c.suspectUntil = this.suspects.size ? this.suspects.get(m.gatewayId)?.until : undefined;
    // Labels the gateway reports change only with its status: merge again only then.
    const reported = live?.labels ?? NO_LABELS;
    if (m.mergedFrom !== reported) {
      m.mergedFrom = reported;
      c.labels = reported === NO_LABELS ? m.labels : { ...reported, ...m.labels };
    }
  }

  /**
   * Runs an operation on a stream to `target` through a gateway or pool of `orgId`, failing
   * over between members on open failures (see failover.ts). Returns which gateway served.
   */
  async run<T>(
    orgId: string,
    ref: GatewayRef,
    target: Target,
    operation: (stream: Duplex, member: { gatewayId: string; gatewayName: string }) => Promise<T>,
    opts: FailoverOptions = {},
  ): Promise<Served<T>> {
    await this.ensureLoaded();
    const poolLabel = (r: GatewayRef) =>
      'gatewayPoolId' in r ? (this.pools.get(r.gatewayPoolId)?.name ?? r.gatewayPoolId) : '';
    const deps: FailoverDeps = {
      candidates: (r) => this.candidatesFor(orgId, r),
      openStream: (id, host, port, o) => this.registry.hub.openStream(id, host, port, o),
      markSuspect: (id, reason) =>
        void this.suspects.set(id, { until: Date.now() + SUSPECT_MS, reason }),
      onSelected: (r) => {
        if ('gatewayPoolId' in r) this.metrics.poolSelections.inc({ pool: poolLabel(r) });
      },
      onFailover: (r, attempt) => {
        this.metrics.poolFailovers.inc({ pool: poolLabel(r) });
        this.log.warn(
          { pool: poolLabel(r), gateway: attempt.gatewayName, reason: attempt.message },
          'failing over to another pool member',
        );
      },
      now: Date.now,
    };
    return runThroughPool(deps, ref, target, operation, opts);
  }

  /** Records pools crossing their min_healthy floor (audit + gauge); runs every 250 ms. */
  async evaluate(now = Date.now()): Promise<void> {
    await this.ensureLoaded();
    for (const [id, { until }] of this.suspects) if (until <= now) this.suspects.delete(id);
    for (const pool of this.pools.values()) {
      const s = this.summary(pool, now);
      this.metrics.poolHealthyMembers.set(
        { pool: pool.name, pool_id: pool.id },
        s.healthyMemberCount,
      );
      const below = belowFloor(s.memberCount, s.healthyMemberCount, pool.minHealthy);
      const was = this.degraded.get(pool.id);
      this.degraded.set(pool.id, below);
      if (was === undefined || was === below) continue;
      const event = below ? 'gateway-pool.degraded' : 'gateway-pool.recovered';
      this.log[below ? 'warn' : 'info'](
        { pool: pool.name, healthy: s.healthyMemberCount, minHealthy: pool.minHealthy },
        event,
      );
      await this.audit.record(
        { type: 'system', name: 'gatepool' },
        event,
        {
          poolId: pool.id,
          pool: pool.name,
          healthyMembers: s.healthyMemberCount,
          members: s.memberCount,
          minHealthy: pool.minHealthy,
        },
        { orgId: pool.orgId },
      );
    }
  }
}

/** Loads one pool row of an org or answers 404. */
export async function findPool(db: Db, orgId: string, poolId: string) {
  const [row] = await db.select().from(gatewayPools).where(eq(gatewayPools.id, poolId));
  if (!row || row.orgId !== orgId) throw notFound(`Gateway pool ${poolId}`);
  return row;
}
