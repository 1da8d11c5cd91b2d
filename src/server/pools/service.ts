/**
 * Gateway pool rules: CRUD, membership, and the views the API shows. Live health comes from the
 * runtime (one health function); consumers are reached only through ConsumerLookup.
 */
import type { AuditLog, AuditWho } from '../audit/service.js';
import type { Db } from '../db/client.js';
import type { ConsumerLookup, SeenConsumers } from '../gateways/consumer-lookup.js';
import type { AppAbility } from '../rbac/ability.js';
import type { GatewayDirectory, GatewayView } from '../gateways/directory.js';
import type { MemberHealth } from '../gateways/health.js';
import { findGatewayByRef } from '../gateways/queries.js';
import { conflict, isUniqueViolation, notFound } from '../http/errors.js';
import { poolHealth, type PoolHealth } from './pool-health.js';
import {
  deleteMembership,
  deletePool,
  findPool,
  insertMembership,
  insertPool,
  listPools,
  lockPool,
  poolMembers,
  updateMembership,
  updatePool,
  type PoolRow,
} from './queries.js';
import type { MemberState, PoolRuntime } from './runtime.js';

export interface PoolServiceDeps {
  db: Db;
  audit: AuditLog;
  directory: GatewayDirectory;
  runtime: PoolRuntime;
  consumers: ConsumerLookup;
}

export interface PoolFields {
  name?: string;
  description?: string;
  minHealthy?: number;
  healthCheckTarget?: string | null;
}

export interface PoolView {
  id: string;
  name: string;
  description: string;
  minHealthy: number;
  healthCheckTarget: string | null;
  createdAt: string;
  updatedAt: string;
  memberCount: number;
  healthyMemberCount: number;
  health: PoolHealth;
  connectedResourcesCount: number;
}

export type MemberView = Omit<GatewayView, 'health' | 'lastResort'> & {
  health: MemberHealth;
  /** Why it is not selectable (its health, or the failed health check); null when healthy. */
  healthReason: string | null;
  lastResort: string | null;
  healthCheck: MemberState['healthCheck'];
  weight: number;
  priority: number;
  joinedAt: string;
};

export type PoolDetail = PoolView & { members: MemberView[] };

/** How long saving a new health-check target waits for the members' first checks of it. */
const TARGET_CHECK_WAIT_MS = 2500;

const poolFields = (row: PoolRow) => ({
  id: row.id,
  name: row.name,
  description: row.description,
  minHealthy: row.minHealthy,
  healthCheckTarget: row.healthCheckTarget,
  createdAt: row.createdAt.toISOString(),
  updatedAt: row.updatedAt.toISOString(),
});

const duplicateName = (name: string | undefined) => (err: unknown) => {
  if (isUniqueViolation(err))
    throw conflict(`A gateway pool named "${name}" already exists.`, { name });
  throw err;
};

export class PoolService {
  constructor(private readonly deps: PoolServiceDeps) {}

  /** After a change: the runtime reloads, then the answer is the pool as it now stands. */
  private async refreshed(orgId: string, poolId: string): Promise<PoolDetail> {
    this.deps.runtime.invalidate();
    await this.deps.runtime.ensureLoaded();
    return this.get(orgId, poolId);
  }

  async get(orgId: string, ref: string): Promise<PoolDetail> {
    const { db, runtime, directory } = this.deps;
    const row = await findPool(db, orgId, ref);
    const [members, counts] = await Promise.all([
      poolMembers(db, orgId, row.id),
      this.deps.consumers.countsByPool(db, orgId, [row.id]),
    ]);
    const now = Date.now();
    const memberViews: MemberView[] = members.map((m) => {
      const {
        health: _gatewayHealth,
        lastResort: _gatewayLastResort,
        ...view
      } = directory.view(m.gateway, now);
      const state = runtime.memberState(
        { orgId, healthCheckTarget: row.healthCheckTarget },
        { gatewayId: m.gateway.id, everConnected: m.gateway.status !== 'never-connected' },
        now,
      );
      return {
        ...view,
        health: state.health,
        healthReason: state.reason,
        lastResort: state.lastResort,
        healthCheck: state.healthCheck,
        weight: m.weight,
        priority: m.priority,
        joinedAt: m.joinedAt.toISOString(),
      };
    });
    const healthy = memberViews.filter((m) => m.health === 'healthy').length;
    return {
      ...poolFields(row),
      memberCount: memberViews.length,
      healthyMemberCount: healthy,
      health: poolHealth(memberViews.length, healthy, row.minHealthy),
      connectedResourcesCount: counts.get(row.id) ?? 0,
      members: memberViews,
    };
  }

  /** A page of pools with member counts and health (three queries whatever their number). */
  async list(orgId: string, cursor: string | undefined, limit: number) {
    const { db, runtime } = this.deps;
    await runtime.ensureLoaded();
    const page = await listPools(db, orgId, cursor, limit);
    const counts = await this.deps.consumers.countsByPool(
      db,
      orgId,
      page.items.map((r) => r.id),
    );
    const now = Date.now();
    const items: PoolView[] = page.items.map((row) => {
      const cached = runtime.pool(orgId, row.id);
      const summary = cached
        ? runtime.summary(cached, now)
        : { memberCount: 0, healthyMemberCount: 0, health: 'empty' as const };
      return { ...poolFields(row), ...summary, connectedResourcesCount: counts.get(row.id) ?? 0 };
    });
    return { items, nextCursor: page.nextCursor };
  }

  async create(
    orgId: string,
    who: AuditWho,
    input: PoolFields & { name: string },
    id: string,
  ): Promise<PoolDetail> {
    await this.deps.audit
      .audited(
        who,
        'gateway-pool.create',
        (tx) =>
          insertPool(tx, {
            id,
            orgId,
            name: input.name,
            description: input.description ?? '',
            minHealthy: input.minHealthy ?? 1,
            healthCheckTarget: input.healthCheckTarget ?? null,
          }),
        { poolId: id, pool: input.name },
      )
      .catch(duplicateName(input.name));
    return this.refreshed(orgId, id);
  }

  /**
   * Saves the changes. A new health-check target is checked by every connected member at once
   * (the tunnel pushes it to them); the answer waits for those first checks, up to
   * TARGET_CHECK_WAIT_MS, and warns when members cannot reach it: a typo there (or a target
   * outside the members' --allow rules) takes them all out of the pool, and everything using it
   * stops, so the person saving hears it now rather than from the people it broke.
   */
  async update(
    orgId: string,
    who: AuditWho,
    ref: string,
    changes: PoolFields,
  ): Promise<PoolDetail & { warnings: string[] }> {
    const before = await findPool(this.deps.db, orgId, ref);
    const since = Date.now();
    await this.deps.audit
      .audited(who, 'gateway-pool.update', (tx) => updatePool(tx, orgId, before.id, changes), {
        poolId: before.id,
        pool: before.name,
        changes,
      })
      .catch(duplicateName(changes.name));
    const detail = await this.refreshed(orgId, before.id);
    const target = changes.healthCheckTarget;
    if (!target || target === before.healthCheckTarget) return { ...detail, warnings: [] };
    return this.afterTargetChecks(orgId, detail, target, since);
  }

  private async afterTargetChecks(
    orgId: string,
    first: PoolDetail,
    target: string,
    since: number,
  ): Promise<PoolDetail & { warnings: string[] }> {
    const deadline = Date.now() + TARGET_CHECK_WAIT_MS;
    const checked = (m: MemberView) =>
      m.healthCheck?.target === target && Date.parse(m.healthCheck.checkedAt) >= since - 1000;
    const connected = (m: MemberView) =>
      m.health !== 'unreachable' && m.health !== 'never-connected';
    let detail = first;
    for (let i = 0; i < 100; i++) {
      if (detail.members.filter(connected).every(checked) || Date.now() >= deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
      detail = await this.get(orgId, first.id);
    }
    const live = detail.members.filter(connected);
    const failing = live.filter((m) => checked(m) && !m.healthCheck?.ok);
    if (failing.length === 0) return { ...detail, warnings: [] };
    const why = failing.map((m) => `${m.name}: ${m.healthCheck?.error ?? 'failed'}`).join('; ');
    const warning =
      failing.length === live.length
        ? `No connected member can reach the health-check target ${target} (${why}): pool "${detail.name}" has no healthy member now, and everything using it stops until it can.`
        : `${failing.length} of ${live.length} connected members cannot reach the health-check target ${target} (${why}): they serve nothing until they can.`;
    return { ...detail, warnings: [warning] };
  }

  /** Deletes a pool no consumer references (409 naming them otherwise). */
  async remove(orgId: string, who: AuditWho, ref: string): Promise<void> {
    await this.deps.audit.audited(
      who,
      'gateway-pool.delete',
      async (tx) => {
        // Locked: a consumer attaching concurrently waits on it (its FK check needs a share
        // lock), so the consumer check below cannot be outrun.
        const pool = await lockPool(tx, orgId, ref);
        const consumers = await this.deps.consumers.of(tx, orgId, { gatewayPoolId: pool.id });
        if (consumers.length) {
          throw conflict(
            `Gateway pool "${pool.name}" is used by ${consumers.map((c) => `${c.kind} "${c.name}"`).join(', ')}; detach them first.`,
            { consumers },
          );
        }
        await deletePool(tx, orgId, pool.id);
        return pool;
      },
      (pool) => ({ poolId: pool.id, pool: pool.name }),
    );
    this.deps.runtime.invalidate();
  }

  /**
   * A membership request names this org's pool and this org's gateway (by id or name), or it
   * is a 404 naming what was not found; the pool is reported first when neither is.
   */
  private async poolAndGateway(orgId: string, ref: string, gatewayRef: string) {
    const [pool, gw] = await Promise.allSettled([
      findPool(this.deps.db, orgId, ref),
      findGatewayByRef(this.deps.db, orgId, gatewayRef),
    ]);
    if (pool.status === 'rejected') throw pool.reason;
    if (gw.status === 'rejected') throw gw.reason;
    return { pool: pool.value, gw: gw.value };
  }

  async addMember(
    orgId: string,
    who: AuditWho,
    ref: string,
    /** gatewayId: the gateway's id or name. */
    input: { gatewayId: string; weight?: number; priority?: number },
  ): Promise<PoolDetail> {
    const { pool, gw } = await this.poolAndGateway(orgId, ref, input.gatewayId);
    await this.deps.audit
      .audited(
        who,
        'gateway-pool.member-add',
        (tx) => insertMembership(tx, orgId, pool.id, gw.id, input),
        (m) => ({
          poolId: pool.id,
          pool: pool.name,
          gatewayId: gw.id,
          gateway: gw.name,
          weight: m.weight,
          priority: m.priority,
        }),
      )
      .catch((err: unknown) => {
        if (isUniqueViolation(err))
          throw conflict(`Gateway "${gw.name}" is already a member of pool "${pool.name}".`);
        throw err;
      });
    return this.refreshed(orgId, pool.id);
  }

  async updateMember(
    orgId: string,
    who: AuditWho,
    ref: string,
    gatewayId: string,
    changes: { weight?: number; priority?: number },
  ): Promise<PoolDetail> {
    const { pool, gw } = await this.poolAndGateway(orgId, ref, gatewayId);
    await this.deps.audit.audited(
      who,
      'gateway-pool.member-update',
      async (tx) => {
        if (!(await updateMembership(tx, orgId, pool.id, gw.id, changes)))
          throw notFound(`Gateway "${gw.name}" is not a member of pool "${pool.name}"; membership`);
      },
      { poolId: pool.id, pool: pool.name, gatewayId: gw.id, gateway: gw.name, changes },
    );
    return this.refreshed(orgId, pool.id);
  }

  async removeMember(orgId: string, who: AuditWho, ref: string, gatewayId: string): Promise<void> {
    const { pool, gw } = await this.poolAndGateway(orgId, ref, gatewayId);
    await this.deps.audit.audited(
      who,
      'gateway-pool.member-remove',
      async (tx) => {
        if (!(await deleteMembership(tx, orgId, pool.id, gw.id)))
          throw notFound(`Gateway "${gw.name}" is not a member of pool "${pool.name}"; membership`);
      },
      { poolId: pool.id, pool: pool.name, gatewayId: gw.id, gateway: gw.name },
    );
    this.deps.runtime.invalidate();
  }

  /** What uses the pool, as far as `ability` may see (the rest only counted). */
  async resources(orgId: string, ref: string, ability: AppAbility): Promise<SeenConsumers> {
    const all = await this.deps.db.transaction(async (tx) => {
      const pool = await findPool(tx, orgId, ref);
      return this.deps.consumers.of(tx, orgId, { gatewayPoolId: pool.id });
    });
    return this.deps.consumers.visible(ability, all);
  }
}
