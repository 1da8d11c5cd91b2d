import type { FastifyBaseLogger } from 'fastify';
import type { AuditLog } from '../audit/service.js';
import type { Db } from '../db/client.js';
import { isDatabaseUnavailable, outageLogger } from '../db/errors.js';
import { gatewayPoolMemberships, gatewayPools, gateways } from '../db/schema.js';
import type { PlatformMetrics } from '../gateways/metrics.js';
import type { GatewayDirectory } from '../gateways/directory.js';
import { emptyVerdict, type HealthFields, type MemberHealth } from '../gateways/health.js';
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
import type { GatewayHealthEntry, HealthSnapshot, PoolHealthEntry } from './health-snapshot.js';
import { belowFloor, poolHealth, type PoolHealth } from './pool-health.js';
import { selectMember, trusted, type Candidate } from './selection.js';
import type { Duplex } from 'node:stream';

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

/** A gateway as the cache holds it (the record's fields health and pinned references need). */
interface CachedGateway {
  id: string;
  orgId: string;
  name: string;
  labels: Record<string, string>;
  everConnected: boolean;
  lastSeenAt: Date | null;
  createdAt: Date;
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
    health: 'never-connected',
    lastResort: null,
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
  health: MemberHealth;
  healthy: boolean;
  /** Why it is not selectable (its health or the failed health check); null when healthy. */
  reason: string | null;
  healthCheck: { target: string; ok: boolean; error?: string; checkedAt: string } | null;
  /** Why a healthy member is used only as a last resort right now (quiet tunnel, recent failure). */
  lastResort: string | null;
  /** The tunnel is silent past quietAfterMs (tunnel/liveness.ts). */
  quiet: boolean;
}

export interface PoolSummary {
  memberCount: number;
  healthyMemberCount: number;
  health: PoolHealth;
}

/** Whether a reference can serve right now, and the words to say so (Kubernetes auth's outage check). */
export interface ReferenceHealth {
  usable: boolean;
  message: string;
}

/**
 * Pools in memory: membership is cached and reloaded when it changes, so selecting a member
 * costs no database or network round trip. Every member's health comes from the one health
 * function (gateways/health.ts) through the directory, which holds the live state and marks.
 * Note: the cache is per platform node; another node's membership change reaches this one
 * at its next reload (DESIGN §4: the live truth is on the node holding the tunnel).
 */
export class PoolRuntime {
  private pools = new Map<string, CachedPool>();
  private gateways = new Map<string, CachedGateway>();
  private loading: Promise<void> | undefined;
  /** Bumped by every change; the cache is current when it was loaded at the latest one. */
  private generation = 1;
  private loadedGeneration = 0;
  private readonly degraded = new Map<string, boolean>();
  /** Pool id → name of the series last exported, so a deleted or renamed pool's go (evaluate). */
  private exported = new Map<string, string>();
  private readonly timer: NodeJS.Timeout;
  /** Scratch verdict for counting (summary, evaluate): never escapes. */
  private readonly scratch = emptyVerdict();
  private readonly outage = outageLogger((fields, message) => this.log.warn(fields, message));

  constructor(
    private readonly db: Db,
    private readonly directory: GatewayDirectory,
    private readonly audit: AuditLog,
    private readonly metrics: PlatformMetrics,
    private readonly log: FastifyBaseLogger,
  ) {
    this.timer = setInterval(
      () =>
        void this.evaluate().catch((err: unknown) =>
          // During a database outage this would fail 4 times a second: log it now and then.
          isDatabaseUnavailable(err)
            ? this.outage('pool evaluation', err)
            : this.log.error({ err }, 'pool evaluation failed'),
        ),
      EVALUATE_EVERY_MS,
    );
    this.timer.unref();
    directory.hub.on('connected', (live) => this.pushHealthChecks(live.gatewayId));
  }

  close(): void {
    clearInterval(this.timer);
  }

  /** Call after any change to pools, memberships or gateways. */
  invalidate(): void {
    this.generation += 1;
  }

  /**
   * Resolves once the cache reflects every change invalidated before the call. A reload already
   * under way may have read before the latest change, so then it takes another (bounded: under
   * a stream of changes the caller gets a cache at most a few changes old rather than waiting).
   */
  async ensureLoaded(): Promise<void> {
    for (let pass = 0; pass < 4 && this.loadedGeneration !== this.generation; pass++) {
      this.loading ??= this.reload().finally(() => (this.loading = undefined));
      await this.loading;
    }
  }

  private async reload(): Promise<void> {
    const generation = this.generation;
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
          lastSeenAt: gateways.lastSeenAt,
          createdAt: gateways.createdAt,
        })
        .from(gateways),
    ]);
    const gws = new Map<string, CachedGateway>(
      gatewayRows.map((g) => [
        g.id,
        {
          id: g.id,
          orgId: g.orgId,
          name: g.name,
          labels: g.labels,
          everConnected: g.status !== 'never-connected',
          lastSeenAt: g.lastSeenAt,
          createdAt: g.createdAt,
        },
      ]),
    );
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
      if (!pool || !gw || gw.orgId !== pool.orgId) continue;
      pool.members.push({
        gatewayId: gw.id,
        name: gw.name,
        weight: m.weight,
        priority: m.priority,
        labels: gw.labels,
        everConnected: gw.everConnected,
      });
    }
    const before = this.pools;
    this.pools = pools;
    this.gateways = gws;
    for (const id of before.keys()) if (!pools.has(id)) this.degraded.delete(id);
    this.loadedGeneration = generation;
    // Health-check targets may have changed: tell every connected gateway its current list.
    for (const g of gatewayRows) if (this.directory.hub.live(g.id)) this.pushHealthChecks(g.id);
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
    this.directory.hub.setHealthCheckTargets(gatewayId, this.healthCheckTargetsFor(gatewayId));
  }

  /** The one health function for a member of `pool` (its health-check target applies). */
  private assess<V extends HealthFields>(
    pool: Pick<CachedPool, 'healthCheckTarget' | 'orgId'>,
    member: { gatewayId: string; everConnected: boolean },
    into: V,
    now: number,
    explain: boolean,
    live?: GatewayLive,
  ) {
    return this.directory.assess(
      into,
      pool.orgId,
      member,
      pool.healthCheckTarget,
      now,
      explain,
      live ?? this.directory.liveOf(pool.orgId, member.gatewayId),
    );
  }

  /** Live state of one member of one pool, as the API and the event stream show it. */
  memberState(
    pool: Pick<CachedPool, 'healthCheckTarget' | 'orgId'>,
    member: { gatewayId: string; everConnected: boolean },
    now = Date.now(),
  ): MemberState {
    const live = this.directory.liveOf(pool.orgId, member.gatewayId);
    const verdict = this.assess(pool, member, emptyVerdict(), now, true, live);
    const result = pool.healthCheckTarget
      ? live?.healthChecks.find((r) => r.target === pool.healthCheckTarget)
      : undefined;
    const healthCheck = result
      ? {
          target: result.target,
          ok: result.ok,
          ...(result.error ? { error: result.error } : {}),
          checkedAt: new Date(result.checkedAt).toISOString(),
        }
      : null;
    return {
      health: verdict.health,
      healthy: verdict.healthy,
      reason: verdict.unhealthyReason ?? null,
      healthCheck,
      lastResort: verdict.lastResort,
      quiet: verdict.quiet,
    };
  }

  /** Member counts and pool health (DESIGN §4) from the cache: the list, metrics and outage checks. */
  summary(pool: CachedPool, now = Date.now()): PoolSummary {
    let healthy = 0;
    for (const m of pool.members)
      if (this.assess(pool, m, this.scratch, now, false).healthy) healthy += 1;
    return {
      memberCount: pool.members.length,
      healthyMemberCount: healthy,
      health: poolHealth(pool.members.length, healthy, pool.minHealthy),
    };
  }

  /** Whether a gateway or pool of `orgId` can serve now, and why not (Kubernetes auth's outage check). */
  async referenceHealth(
    orgId: string,
    ref: GatewayRef,
    now = Date.now(),
  ): Promise<ReferenceHealth> {
    await this.ensureLoaded();
    if ('gatewayPoolId' in ref) {
      const pool = this.pool(orgId, ref.gatewayPoolId);
      if (!pool)
        return { usable: false, message: `gateway pool ${ref.gatewayPoolId} does not exist` };
      const s = this.summary(pool, now);
      if (s.healthyMemberCount > 0)
        return {
          usable: true,
          message: `gateway pool "${pool.name}" is ${s.health} (${s.healthyMemberCount} of ${s.memberCount} members healthy)`,
        };
      if (s.memberCount === 0)
        return { usable: false, message: `gateway pool "${pool.name}" has no members` };
      const why = pool.members
        .map(
          (m) =>
            `${m.name}: ${this.assess(pool, m, this.scratch, now, false).unhealthyReason ?? 'not healthy'}`,
        )
        .join('; ');
      return {
        usable: false,
        message: `gateway pool "${pool.name}" has no healthy member (${why})`,
      };
    }
    const gw = this.gateways.get(ref.gatewayId);
    if (!gw || gw.orgId !== orgId)
      return { usable: false, message: `gateway ${ref.gatewayId} does not exist` };
    const v = this.directory.assess(this.scratch, gw.orgId, recordOfCached(gw), null, now, false);
    return {
      usable: v.healthy,
      message: `gateway "${gw.name}" is ${v.health === 'never-connected' ? 'not connected yet' : v.health}`,
    };
  }

  /**
   * The org's gateways (members of a pool or not) and pools with their members' health, from
   * memory, as the one health function says (the event stream diffs successive snapshots).
   */
  async healthSnapshot(orgId: string): Promise<HealthSnapshot> {
    await this.ensureLoaded();
    const now = Date.now();
    const gatewayEntries: GatewayHealthEntry[] = [];
    for (const gw of this.gateways.values()) {
      if (gw.orgId !== orgId) continue;
      const live = this.directory.liveOf(orgId, gw.id);
      const v = this.directory.assess(
        emptyVerdict(),
        orgId,
        recordOfCached(gw),
        null,
        now,
        true,
        live,
      );
      const seen = this.directory.lastSeenOf(gw.id, live);
      const stored = gw.lastSeenAt?.getTime();
      const lastSeen = seen === undefined ? stored : Math.max(seen, stored ?? 0);
      gatewayEntries.push({
        id: gw.id,
        name: gw.name,
        health: v.health,
        lastResort: v.lastResort,
        rttMs: live?.rttMs == null ? null : Math.round(live.rttMs * 1000) / 1000,
        activeStreams: live?.activeStreams ?? 0,
        lastSeenAt: lastSeen === undefined ? null : new Date(lastSeen).toISOString(),
      });
    }
    gatewayEntries.sort((a, b) => a.name.localeCompare(b.name));
    const poolEntries: PoolHealthEntry[] = [];
    for (const pool of this.pools.values()) {
      if (pool.orgId !== orgId) continue;
      const ordered = [...pool.members].sort(
        (a, b) => a.priority - b.priority || a.name.localeCompare(b.name),
      );
      const members = ordered.map((m) => {
        const v = this.assess(pool, m, emptyVerdict(), now, true);
        return {
          gatewayId: m.gatewayId,
          health: v.health,
          lastResort: v.lastResort,
          reason: v.unhealthyReason ?? null,
        };
      });
      const healthy = members.filter((m) => m.health === 'healthy').length;
      poolEntries.push({
        id: pool.id,
        name: pool.name,
        health: poolHealth(members.length, healthy, pool.minHealthy),
        memberCount: members.length,
        healthyMemberCount: healthy,
        minHealthy: pool.minHealthy,
        members,
      });
    }
    poolEntries.sort((a, b) => a.name.localeCompare(b.name));
    return { gateways: gatewayEntries, pools: poolEntries };
  }

  /**
   * The members of a reference as selection candidates, refreshed in place: a pool keeps one
   * Candidate per member for as long as its cached membership lives, so a request allocates
   * nothing per member: with 1,000 members it costs tens of microseconds, not hundreds.
   */
  candidatesFor(orgId: string, ref: GatewayRef): { label: string; members: Candidate[] } {
    const now = Date.now();
    if ('gatewayId' in ref) {
      const gw = this.gateways.get(ref.gatewayId);
      if (!gw || gw.orgId !== orgId) throw notFound(`Gateway ${ref.gatewayId}`);
      const member: CachedMember = {
        gatewayId: ref.gatewayId,
        name: gw.name,
        weight: 1,
        priority: 0,
        labels: gw.labels,
        everConnected: gw.everConnected,
      };
      const [candidate] = shellsFor([member]);
      const live = this.directory.liveOf(orgId, member.gatewayId);
      this.refresh({ orgId, healthCheckTarget: null }, member, candidate as Candidate, now, live);
      return { label: `gateway "${gw.name}"`, members: [candidate as Candidate] };
    }
    const pool = this.pool(orgId, ref.gatewayPoolId);
    if (!pool) throw notFound(`Gateway pool ${ref.gatewayPoolId}`);
    pool.candidates ??= shellsFor(pool.members);
    const hub = this.directory.hub;
    if (pool.lives === undefined || pool.livesGeneration !== hub.sessionsGeneration) {
      pool.lives = pool.members.map((m) => this.directory.liveOf(pool.orgId, m.gatewayId));
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
    // The cached member is the record: nothing is allocated per member per request.
    this.directory.assess(c, pool.orgId, m, pool.healthCheckTarget, now, false, live);
    c.outstanding = live?.activeStreams ?? 0;
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
    // By id as well as name: names are unique per organization only.
    const poolLabel = (r: GatewayRef) =>
      'gatewayPoolId' in r
        ? {
            pool: this.pools.get(r.gatewayPoolId)?.name ?? r.gatewayPoolId,
            pool_id: r.gatewayPoolId,
          }
        : { pool: '', pool_id: '' };
    const deps: FailoverDeps = {
      candidates: (r) => this.candidatesFor(orgId, r),
      openStream: (id, host, port, o) => this.directory.hub.openStream(id, host, port, o),
      markSuspect: (id, reason) => this.directory.markSuspect(id, reason),
      onSelected: (r) => {
        if ('gatewayPoolId' in r) this.metrics.poolSelections.inc(poolLabel(r));
      },
      onFailover: (r, attempt) => {
        this.metrics.poolFailovers.inc(poolLabel(r));
        this.log.warn(
          { pool: poolLabel(r).pool, gateway: attempt.gatewayName, reason: attempt.message },
          'failing over to another pool member',
        );
      },
      now: Date.now,
    };
    return runThroughPool(deps, ref, target, operation, opts);
  }

  /**
   * Opens a stream to `target` ahead of any request for it (access-targets/predial.ts), on the
   * member a request would get now, if that member is trusted (healthy, neither quiet nor
   * suspect). Speculative: one attempt, and a failure marks nobody suspect and counts no
   * failover, since no request was refused; undefined when nothing was opened.
   */
  async predial(
    orgId: string,
    ref: GatewayRef,
    target: Target,
    timeoutMs: number,
  ): Promise<{ stream: Duplex; gatewayId: string; gatewayName: string } | undefined> {
    await this.ensureLoaded();
    const now = Date.now();
    try {
      // A pool or gateway deleted meanwhile throws its 404: nothing to open then either.
      const selection = selectMember(this.candidatesFor(orgId, ref).members, { now });
      if (!selection.ok || !trusted(selection.member, now)) return undefined;
      const { gatewayId, name } = selection.member;
      const stream = await this.directory.hub.openStream(gatewayId, target.host, target.port, {
        timeoutMs,
        abandonWhenQuiet: true,
      });
      return { stream, gatewayId, gatewayName: name };
    } catch {
      return undefined;
    }
  }

  /** Whether a request would trust `gatewayId` now: a member of `ref`, healthy, neither quiet nor suspect. */
  trusts(orgId: string, ref: GatewayRef, gatewayId: string): boolean {
    const now = Date.now();
    try {
      const { members } = this.candidatesFor(orgId, ref);
      const member = members.find((m) => m.gatewayId === gatewayId);
      return member !== undefined && member.healthy && trusted(member, now);
    } catch {
      return false;
    }
  }

  /** Records pools crossing their min_healthy floor (audit + gauge); runs every 250 ms. */
  async evaluate(now = Date.now()): Promise<void> {
    await this.ensureLoaded();
    this.directory.expireSuspects(now);
    const exported = new Map<string, string>();
    for (const pool of this.pools.values()) exported.set(pool.id, pool.name);
    // A deleted pool left at 0 healthy members would fire "pool down" alerts forever.
    for (const [id, name] of this.exported)
      if (exported.get(id) !== name) this.metrics.forgetPool({ pool: name, pool_id: id });
    this.exported = exported;
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

const recordOfCached = (gw: CachedGateway) => ({
  orgId: gw.orgId,
  gatewayId: gw.id,
  everConnected: gw.everConnected,
});

/** Loads one pool of an org by id or name, or answers 404 (used by the consumers' attach rules). */
export { findPool } from './queries.js';
