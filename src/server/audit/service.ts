import { and, desc, eq, gte, like, lt, lte, sql, type SQL } from 'drizzle-orm';
import type { Db, Tx } from '../db/client.js';
import { auditLogs } from '../db/schema.js';

export type ActorType = 'user' | 'identity' | 'gateway' | 'system' | 'anonymous';
export interface AuditActor {
  type: ActorType;
  id?: string | null;
  name?: string | null;
}
export interface AuditContext {
  orgId: string | null;
  ip?: string | null;
  userAgent?: string | null;
}

export type AuditEntry = typeof auditLogs.$inferSelect;

/** Who made a change and from where: what every audited change records besides its event. */
export interface AuditWho extends AuditContext {
  actor: AuditActor;
}

/** Metadata keys that must never be stored, whatever a caller passes. */
const SECRET_KEYS = /(password|token|secret|jwt|key)$/i;

function scrub(metadata: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(metadata).map(([k, v]) => [k, SECRET_KEYS.test(k) ? '[redacted]' : storable(v)]),
  );
}

/** jsonb refuses NUL and lone UTF-16 surrogates: an audit entry must never fail on them. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
function storable(v: unknown): unknown {
  if (typeof v === 'string')
    return v.replaceAll('\u0000', '\uFFFD').replace(LONE_SURROGATE, '\uFFFD');
  if (Array.isArray(v)) return v.map(storable);
  if (v && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, storable(x)]));
  }
  return v;
}

/** The one way state changes are recorded. */
export class AuditLog {
  constructor(private readonly db: Db) {}

  async record(
    actor: AuditActor,
    event: string,
    metadata: Record<string, unknown>,
    ctx: AuditContext,
    db: Db = this.db,
  ): Promise<void> {
    await db.insert(auditLogs).values({
      orgId: ctx.orgId,
      event,
      actorType: actor.type,
      actorId: actor.id ?? null,
      actorName: actor.name ?? null,
      metadata: scrub(metadata),
      ip: ctx.ip ?? null,
      userAgent: ctx.userAgent ?? null,
    });
  }

  /**
   * Runs a change and records its audit entry in the same transaction: both land or neither
   * does. `metadata` may be computed from what the change returned (e.g. a new row's id).
   */
  audited<T>(
    who: AuditWho,
    event: string,
    change: (tx: Tx) => Promise<T>,
    metadata: Record<string, unknown> | ((value: T) => Record<string, unknown>),
  ): Promise<T> {
    return this.db.transaction(async (tx) => {
      const value = await change(tx);
      await this.record(
        who.actor,
        event,
        typeof metadata === 'function' ? metadata(value) : metadata,
        who,
        tx,
      );
      return value;
    });
  }

  async list(
    orgId: string,
    q: {
      event?: string;
      actorId?: string;
      /** The actor's recorded name (a user's e-mail), matched case-insensitively. */
      actor?: string;
      actorType?: string;
      from?: Date;
      to?: Date;
      cursor?: number;
      limit: number;
    },
  ): Promise<{ items: AuditEntry[]; nextCursor: string | null }> {
    const where: SQL[] = [eq(auditLogs.orgId, orgId)];
    if (q.event?.endsWith('*')) {
      where.push(
        like(auditLogs.event, q.event.slice(0, -1).replace(/[\\%_]/g, (c) => '\\' + c) + '%'),
      );
    } else if (q.event) where.push(eq(auditLogs.event, q.event));
    if (q.actorId) where.push(eq(auditLogs.actorId, q.actorId));
    if (q.actor) where.push(sql`lower(${auditLogs.actorName}) = lower(${q.actor})`);
    if (q.actorType) where.push(eq(auditLogs.actorType, q.actorType));
    if (q.from) where.push(gte(auditLogs.createdAt, q.from));
    if (q.to) where.push(lte(auditLogs.createdAt, q.to));
    if (q.cursor !== undefined) where.push(lt(auditLogs.id, q.cursor));
    const rows = await this.db
      .select()
      .from(auditLogs)
      .where(and(...where))
      .orderBy(desc(auditLogs.id))
      .limit(q.limit + 1);
    const items = rows.slice(0, q.limit);
    const last = items[items.length - 1];
    return { items, nextCursor: rows.length > q.limit && last ? String(last.id) : null };
  }
}
