/**
 * The gateways feature's rules: listing with live health, renaming and labelling, draining,
 * deletion (refused while consumers pin it; says which pools it left and what that costs them).
 * Consumers are reached only through ConsumerLookup (they sit above this layer).
 */
import type { AuditLog, AuditWho } from '../audit/service.js';
import type { Db } from '../db/client.js';
import { conflict, isForeignKeyViolation, isUniqueViolation } from '../http/errors.js';
import type { ConsumerLookup, SeenConsumers } from './consumer-lookup.js';
import type { AppAbility } from '../rbac/ability.js';
import { recordOf, type GatewayDirectory, type GatewayView } from './directory.js';
import { emptyVerdict } from './health.js';
import {
  deleteGateway,
  findGatewayByRef,
  gatewayNameTaken,
  listGateways,
  lockGateway,
  membersOfPools,
  poolsOfGateway,
  updateGateway,
  type GatewayRow,
} from './queries.js';

export interface GatewayServiceDeps {
  db: Db;
  audit: AuditLog;
  directory: GatewayDirectory;
  consumers: ConsumerLookup;
  /** Tells cached membership (the pools' runtime) that gateways changed. */
  changed(): void;
}

export type GatewayDetail = GatewayView & { connectedResourcesCount: number };

export interface GatewayDeletion {
  deleted: true;
  leftPools: { id: string; name: string }[];
  /** What the deletion costs pools that serve consumers (no healthy member left). */
  warnings: string[];
}

export type HealthCheckAnswer =
  | { ok: true; health: GatewayView['health']; rttMs: number }
  | { ok: false; health: GatewayView['health']; error: string };

/** How long drain/undrain waits for the gateway to confirm, so the answer is the state produced. */
const DRAIN_CONFIRM_MS = 3_000;

export class GatewayService {
  constructor(private readonly deps: GatewayServiceDeps) {}

  private async detailed(orgId: string, rows: GatewayRow[]): Promise<GatewayDetail[]> {
    const counts = await this.deps.consumers.countsByGateway(
      this.deps.db,
      orgId,
      rows.map((r) => r.id),
    );
    const now = Date.now();
    return rows.map((r) => ({
      ...this.deps.directory.view(r, now),
      connectedResourcesCount: counts.get(r.id) ?? 0,
    }));
  }

  async list(orgId: string, cursor: string | undefined, limit: number) {
    const page = await listGateways(this.deps.db, orgId, cursor, limit);
    return { items: await this.detailed(orgId, page.items), nextCursor: page.nextCursor };
  }

  /** `ref` here and below: a gateway's id or its name, within the org (as pools take them). */
  async get(orgId: string, ref: string): Promise<GatewayDetail> {
    const [view] = await this.detailed(orgId, [await findGatewayByRef(this.deps.db, orgId, ref)]);
    return view as GatewayDetail;
  }

  /** What uses the gateway directly, as far as `ability` may see (the rest only counted). */
  async resources(orgId: string, ref: string, ability: AppAbility): Promise<SeenConsumers> {
    const all = await this.deps.db.transaction(async (tx) => {
      const gw = await findGatewayByRef(tx, orgId, ref);
      return this.deps.consumers.of(tx, orgId, { gatewayId: gw.id });
    });
    return this.deps.consumers.visible(ability, all);
  }

  async update(
    orgId: string,
    who: AuditWho,
    ref: string,
    changes: { name?: string; labels?: Record<string, string> },
  ): Promise<GatewayDetail> {
    const before = await findGatewayByRef(this.deps.db, orgId, ref);
    try {
      await this.deps.audit.audited(
        who,
        'gateway.update',
        async (tx) => {
          const taken = changes.name
            ? await gatewayNameTaken(tx, orgId, changes.name, before.id)
            : undefined;
          if (taken)
            throw conflict(
              `A gateway named "${taken}" already exists (names are compared ignoring case).`,
            );
          return updateGateway(tx, orgId, before.id, changes);
        },
        { gatewayId: before.id, name: before.name, changes },
      );
    } catch (err) {
      if (isUniqueViolation(err))
        throw conflict(`A gateway named "${changes.name}" already exists.`);
      throw err;
    }
    this.deps.changed();
    return this.get(orgId, before.id);
  }

  /**
   * Deletes a gateway no consumer pins. Its tunnel drops at once; the answer (and the audit
   * entry) names the pools it left and warns when it was the last healthy member of a pool that
   * serves consumers.
   */
  async remove(orgId: string, who: AuditWho, ref: string): Promise<GatewayDeletion> {
    const gw = await findGatewayByRef(this.deps.db, orgId, ref);
    const result = await this.deps.audit
      .audited(
        who,
        'gateway.delete',
        async (tx): Promise<GatewayDeletion> => {
          await lockGateway(tx, orgId, gw.id);
          const consumers = await this.deps.consumers.of(tx, orgId, { gatewayId: gw.id });
          if (consumers.length) {
            throw conflict(
              `Gateway "${gw.name}" is used by ${consumers.map((c) => `${c.kind} "${c.name}"`).join(', ')}; detach them first.`,
              { consumers },
            );
          }
          const pools = await poolsOfGateway(tx, orgId, gw.id);
          const warnings = await this.lastHealthyWarnings(tx, orgId, gw, pools);
          await deleteGateway(tx, orgId, gw.id);
          return {
            deleted: true,
            leftPools: pools.map((p) => ({ id: p.id, name: p.name })),
            warnings,
          };
        },
        (r) => ({
          gatewayId: gw.id,
          name: gw.name,
          leftPools: r.leftPools,
          ...(r.warnings.length ? { warnings: r.warnings } : {}),
        }),
      )
      .catch((err: unknown) => {
        // A reference that appeared anyway (another platform node) is refused by the FK.
        if (isForeignKeyViolation(err))
          throw conflict(`Gateway "${gw.name}" is in use; detach its consumers first.`);
        throw err;
      });
    this.deps.directory.disconnect(gw.id, 'gateway deleted');
    this.deps.changed();
    return result;
  }

  /** Pools serving consumers that would be left with no healthy member (the one health function). */
  private async lastHealthyWarnings(
    tx: Parameters<ConsumerLookup['of']>[0],
    orgId: string,
    gw: GatewayRow,
    pools: { id: string; name: string; healthCheckTarget: string | null }[],
  ): Promise<string[]> {
    if (!pools.length) return [];
    const ids = pools.map((p) => p.id);
    const [members, counts] = await Promise.all([
      membersOfPools(tx, orgId, ids),
      this.deps.consumers.countsByPool(tx, orgId, ids),
    ]);
    const now = Date.now();
    const verdict = emptyVerdict();
    const warnings: string[] = [];
    for (const pool of pools) {
      const used = counts.get(pool.id) ?? 0;
      if (!used) continue;
      const healthy = (gatewayId: string, status: GatewayRow['status']) =>
        this.deps.directory.assess(
          verdict,
          orgId,
          recordOf({ id: gatewayId, orgId, status }),
          pool.healthCheckTarget,
          now,
          false,
        ).healthy;
      if (!healthy(gw.id, gw.status)) continue;
      const others = members.filter((m) => m.poolId === pool.id && m.gatewayId !== gw.id);
      if (others.some((m) => healthy(m.gatewayId, m.status))) continue;
      warnings.push(
        `Gateway "${gw.name}" was the last healthy member of pool "${pool.name}", which serves ${used} consumer${used === 1 ? '' : 's'}: the pool has no healthy member now.`,
      );
    }
    return warnings;
  }

  async healthCheck(orgId: string, ref: string): Promise<HealthCheckAnswer> {
    const gw = await findGatewayByRef(this.deps.db, orgId, ref);
    const { directory } = this.deps;
    const health = directory.view(gw).health;
    if (!directory.liveOf(orgId, gw.id)) {
      return {
        ok: false,
        health,
        error: `Gateway "${gw.name}" has no tunnel to the platform (${health}).`,
      };
    }
    try {
      const rttMs = await directory.hub.ping(gw.id);
      return { ok: true, health, rttMs: Math.round(rttMs * 1000) / 1000 };
    } catch (err) {
      return { ok: false, health, error: `Tunnel round trip failed: ${(err as Error).message}` };
    }
  }

  /**
   * Drains or undrains. A connected gateway confirms an undrain with its next status (about a
   * second): the answer waits for that, bounded, so it shows the state the request produced.
   */
  async setDraining(
    orgId: string,
    who: AuditWho,
    ref: string,
    draining: boolean,
  ): Promise<GatewayDetail> {
    const gw = await findGatewayByRef(this.deps.db, orgId, ref);
    await this.deps.audit.audited(
      who,
      draining ? 'gateway.drain' : 'gateway.undrain',
      (tx) => updateGateway(tx, orgId, gw.id, { draining }),
      { gatewayId: gw.id, name: gw.name },
    );
    const { directory } = this.deps;
    if (directory.liveOf(orgId, gw.id) && directory.hub.setDraining(gw.id, draining)) {
      const deadline = Date.now() + DRAIN_CONFIRM_MS;
      while (Date.now() < deadline) {
        const live = directory.liveOf(orgId, gw.id);
        if (!live || live.draining === draining) break;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    return this.get(orgId, gw.id);
  }
}
