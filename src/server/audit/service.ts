import { randomUUID } from 'node:crypto';
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

type NewEntry = typeof auditLogs.$inferInsert;

function entryOf(
  actor: AuditActor,
  event: string,
  metadata: Record<string, unknown>,
  ctx: AuditContext,
): NewEntry {
  return {
    orgId: ctx.orgId,
    event,
    actorType: actor.type,
    actorId: actor.id ?? null,
    actorName: actor.name ?? null,
    metadata: scrub(metadata),
    ip: ctx.ip ?? null,
    userAgent: ctx.userAgent ?? null,
  };
}

export interface AuditQueueOptions {
  /** Entries kept while the database cannot take them; the oldest go first beyond this. */
  maxQueued?: number;
  /** Rows per INSERT. */
  maxBatch?: number;
  /** Wait before retrying a batch the database refused. */
  retryMs?: number;
  /** How long entries gather before they are written (sooner when a batch is full). */
  gatherMs?: number;
  /** Told when a batch fails or entries had to be dropped. */
  onError?: (err: unknown, dropped: number) => void;
  /** This server process's id (random by default); see `serverId`. */
  serverId?: string;
}

/** The one way state changes are recorded. */
export class AuditLog {
  private queue: NewEntry[] = [];
  private flushing: Promise<void> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly maxQueued: number;
  private readonly maxBatch: number;
  private readonly retryMs: number;
  private readonly gatherMs: number;
  private readonly onError: (err: unknown, dropped: number) => void;
  /**
   * Which server process writes: stamped on entries whose end this process records later
   * (`access.connect`), so that after a crash the next server can tell the connections of a dead
   * process from those of a live one (lost-connections.ts).
   */
  readonly serverId: string;

  constructor(
    private readonly db: Db,
    opts: AuditQueueOptions = {},
  ) {
    this.maxQueued = opts.maxQueued ?? 10_000;
    this.maxBatch = opts.maxBatch ?? 500;
    this.retryMs = opts.retryMs ?? 1000;
    this.gatherMs = opts.gatherMs ?? 100;
    this.onError = opts.onError ?? (() => undefined);
    this.serverId = opts.serverId ?? randomUUID();
  }

  async record(
    actor: AuditActor,
    event: string,
    metadata: Record<string, unknown>,
    ctx: AuditContext,
    db: Db = this.db,
  ): Promise<void> {
    await db.insert(auditLogs).values(entryOf(actor, event, metadata, ctx));
  }

  /**
   * Records an event that accompanies no change of state (a connection opened or closed), off
   * the caller's path: entries gather for `gatherMs` (100 ms) and are written together, one
   * INSERT per batch. On the embedded database every statement runs on the platform's own
   * thread, so a write per connection event would sit between the bytes of every open
   * connection and in front of the next connection's set-up (measured: the connect and
   * disconnect entries were most of the platform's CPU under `pgbench -C`). The entry keeps the
   * time of the event, and waits in memory (bounded) while the database is away rather than
   * being lost with the first failed write. A graceful stop writes what is gathered; a crash
   * loses at most the last `gatherMs` of such events.
   */
  recordSoon(
    actor: AuditActor,
    event: string,
    metadata: Record<string, unknown>,
    ctx: AuditContext,
  ): void {
    this.queue.push({ ...entryOf(actor, event, metadata, ctx), createdAt: new Date() });
    if (this.queue.length > this.maxQueued) {
      const dropped = this.queue.length - this.maxQueued;
      this.queue.splice(0, dropped);
      this.onError(new Error('audit queue full'), dropped);
    }
    if (!this.flushing && !this.retryTimer) this.flushing = this.flushQueued();
  }

  /** Entries recorded with `recordSoon` and not yet written. */
  get pending(): number {
    return this.queue.length;
  }

  /**
   * Writes what `recordSoon` holds (shutdown, tests). Resolves when the queue is empty or,
   * with the database away, when `timeoutMs` passed.
   */
  async drain(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.queue.length && Date.now() < deadline) {
      if (this.retryTimer) {
        clearTimeout(this.retryTimer);
        this.retryTimer = undefined;
      }
      this.flushing ??= this.flushQueued();
      await this.flushing;
      if (this.queue.length) await new Promise((r) => setTimeout(r, 50));
    }
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  private async flushQueued(): Promise<void> {
    if (this.queue.length < this.maxBatch) await new Promise((r) => setTimeout(r, this.gatherMs));
    try {
      while (this.queue.length) {
        const batch = this.queue.slice(0, this.maxBatch);
        try {
          await this.db.insert(auditLogs).values(batch);
        } catch (err) {
          this.onError(err, 0);
          this.retryTimer = setTimeout(() => {
            this.retryTimer = undefined;
            this.flushing ??= this.flushQueued();
          }, this.retryMs);
          this.retryTimer.unref();
          return;
        }
        // Entries beyond maxQueued may have been dropped from the front meanwhile.
        const written = this.queue.indexOf(batch[batch.length - 1]!) + 1;
        this.queue.splice(0, written);
      }
    } finally {
      this.flushing = undefined;
    }
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
      /** Entries about this pool (see routes). */
      poolId?: string;
      /** Entries about this gateway or made by it. */
      gatewayId?: string;
      from?: Date;
      to?: Date;
      cursor?: number;
      limit: number;
    },
  ): Promise<{ items: AuditEntry[]; nextCursor: string | null }> {
    const where: SQL[] = [eq(auditLogs.orgId, orgId)];
    // Events are lowercase; `*` anywhere stands for any characters (`*.delete`, `gateway*`).
    const event = q.event?.toLowerCase();
    if (event?.includes('*')) {
      where.push(
        like(auditLogs.event, event.replace(/[\\%_]/g, (c) => '\\' + c).replaceAll('*', '%')),
      );
    } else if (event) where.push(eq(auditLogs.event, event));
    if (q.poolId)
      where.push(
        sql`(${auditLogs.metadata} ->> 'poolId' = ${q.poolId}
          or ${auditLogs.metadata} -> 'leftPools' @> ${JSON.stringify([{ id: q.poolId }])}::jsonb)`,
      );
    if (q.gatewayId)
      where.push(
        sql`(${auditLogs.metadata} ->> 'gatewayId' = ${q.gatewayId} or ${auditLogs.actorId} = ${q.gatewayId})`,
      );
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
