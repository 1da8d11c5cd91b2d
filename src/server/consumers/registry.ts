/**
 * The consumer registry: every feature that points at a gateway or a gateway pool (Kubernetes
 * auth, access targets, …) declares its table here once, and the gateway and pool layers ask
 * about "their consumers" through ConsumerLookup without knowing any of them. Each question is
 * one UNION ALL query over all kinds, whatever their number (no query per kind, no N+1).
 */
import { sql, type SQL } from 'drizzle-orm';
import type { PgColumn, PgTable } from 'drizzle-orm/pg-core';
import { rowsOf, type Db, type Tx } from '../db/client.js';
import { gateways } from '../db/schema.js';
import type {
  ConsumerLookup,
  ConsumerRef,
  GatewayRef,
  PinnedConsumer,
  SeenConsumers,
} from '../gateways/consumer-lookup.js';
import type { AppAbility } from '../rbac/ability.js';

/** How one consumer kind stores its reference and how it is named in 409s and listings. */
export interface ConsumerKind {
  /** Stable kind name shown to users, e.g. `kubernetes-auth`. */
  kind: string;
  /** The table holding the reference (at most one of gatewayId / gatewayPoolId per row). */
  table: PgTable;
  orgId: PgColumn;
  gatewayId: PgColumn;
  gatewayPoolId: PgColumn;
  /** The consumer's id and display name; may come from a joined table. */
  id: PgColumn | SQL;
  name: PgColumn | SQL;
  /** Tables joined to name the consumer (inner joins), e.g. identities for Kubernetes auth. */
  joins?: { table: PgTable; on: SQL }[];
  /** Whether a role may see this consumer where pools and gateways list what uses them. */
  visibleTo(ability: AppAbility, ref: ConsumerRef): boolean;
}

const list = (values: string[]) =>
  sql.join(
    values.map((v) => sql`${v}`),
    sql`, `,
  );

export class ConsumerRegistry implements ConsumerLookup {
  private readonly kinds: ConsumerKind[] = [];

  constructor(kinds: ConsumerKind[] = []) {
    for (const k of kinds) this.register(k);
  }

  register(kind: ConsumerKind): this {
    if (this.kinds.some((k) => k.kind === kind.kind))
      throw new Error(`consumer kind ${kind.kind} is registered twice`);
    this.kinds.push(kind);
    return this;
  }

  /** The registered kind names, in registration order. */
  get kindNames(): string[] {
    return this.kinds.map((k) => k.kind);
  }

  /** One SELECT per kind, joined by UNION ALL; `select` picks the columns of each branch. */
  private union(
    orgId: string,
    select: (k: ConsumerKind) => SQL,
    where: (k: ConsumerKind) => SQL,
  ): SQL | null {
    if (!this.kinds.length) return null;
    return sql.join(
      this.kinds.map((k) => {
        const joins = sql.join(
          (k.joins ?? []).map((j) => sql` inner join ${j.table} on ${j.on}`),
          sql``,
        );
        return sql`select ${select(k)} from ${k.table}${joins} where ${k.orgId} = ${orgId} and ${where(k)}`;
      }),
      sql` union all `,
    );
  }

  async of(db: Db | Tx, orgId: string, ref: GatewayRef): Promise<ConsumerRef[]> {
    const [column, value] =
      'gatewayId' in ref
        ? [(k: ConsumerKind) => k.gatewayId, ref.gatewayId]
        : [(k: ConsumerKind) => k.gatewayPoolId, ref.gatewayPoolId];
    const union = this.union(
      orgId,
      (k) => sql`${k.kind}::text as kind, ${k.id}::text as id, ${k.name}::text as name`,
      (k) => sql`${column(k)} = ${value}`,
    );
    if (!union) return [];
    const rows = await rowsOf(
      db,
      sql`select kind, id, name from (${union}) c order by kind, name, id`,
    );
    return rows.map((r) => ({ kind: String(r.kind), id: String(r.id), name: String(r.name) }));
  }

  async pinned(db: Db | Tx, orgId: string): Promise<PinnedConsumer[]> {
    const union = this.union(
      orgId,
      (k) =>
        sql`${k.kind}::text as kind, ${k.id}::text as id, ${k.name}::text as name, ${k.gatewayId}::text as gateway_id`,
      (k) => sql`${k.gatewayId} is not null`,
    );
    if (!union) return [];
    const rows = await rowsOf(
      db,
      sql`select c.kind, c.id, c.name, g.name as gateway_name from (${union}) c
          inner join ${gateways} g on g.id::text = c.gateway_id
          order by c.kind, c.name, c.id`,
    );
    return rows.map((r) => ({
      kind: String(r.kind),
      id: String(r.id),
      name: String(r.name),
      gatewayName: String(r.gateway_name),
    }));
  }

  visible(ability: AppAbility, refs: ConsumerRef[]): SeenConsumers {
    const items = refs.filter((r) =>
      this.kinds.some((k) => k.kind === r.kind && k.visibleTo(ability, r)),
    );
    return { items, hidden: refs.length - items.length };
  }

  countsByPool(db: Db | Tx, orgId: string, poolIds: string[]): Promise<Map<string, number>> {
    return this.counts(db, orgId, poolIds, (k) => k.gatewayPoolId);
  }

  countsByGateway(db: Db | Tx, orgId: string, gatewayIds: string[]): Promise<Map<string, number>> {
    return this.counts(db, orgId, gatewayIds, (k) => k.gatewayId);
  }

  private async counts(
    db: Db | Tx,
    orgId: string,
    ids: string[],
    column: (k: ConsumerKind) => PgColumn,
  ): Promise<Map<string, number>> {
    const counts = new Map<string, number>();
    const unique = [...new Set(ids)];
    const union = unique.length
      ? this.union(
          orgId,
          (k) => sql`${column(k)}::text as ref`,
          (k) => sql`${column(k)} in (${list(unique)})`,
        )
      : null;
    if (!union) return counts;
    const rows = await rowsOf(
      db,
      sql`select ref, count(*)::int as n from (${union}) c group by ref`,
    );
    // count() is a number on one driver and may be a string on the other: normalise here.
    for (const r of rows) counts.set(String(r.ref), Number(r.n));
    return counts;
  }
}
