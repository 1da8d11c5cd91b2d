import { and, asc, eq, gte, notExists, sql } from 'drizzle-orm';
import { alias } from 'drizzle-orm/pg-core';
import type { Db, Tx } from '../db/client.js';
import { SERVER_APPLICATION_NAME } from '../db/node-watch.js';
import { auditLogs, organizations } from '../db/schema.js';

export type AuditRow = typeof auditLogs.$inferSelect;
export type NewAuditRow = typeof auditLogs.$inferInsert;

/** Rows per INSERT: well below the 65,535 parameters of one statement. */
const INSERT_CHUNK = 500;

export async function selectOrgIds(db: Db): Promise<string[]> {
  const rows = await db.select({ id: organizations.id }).from(organizations);
  return rows.map((r) => r.id);
}

/**
 * `access.connect` entries of an org, recorded since `since`, with no `access.disconnect` of the
 * same connectionId, opened by a server that is gone: neither `ownServerId` nor a server with a
 * session on this database now (db/node-watch.ts names each session after its server). Oldest
 * first, at most `limit`.
 *
 * Entries without a connectionId (written before it existed) are left out: without one, a
 * connect cannot be paired with its disconnect reliably (same person, target and gateway can
 * have several connections open at once).
 *
 * Liveness is read in the same statement as the entries, so a server that starts meanwhile
 * either shows in pg_stat_activity or its entries are not in this statement's snapshot yet.
 * The event names are literals, not parameters: PostgreSQL matches the partial indexes of
 * migration 0008 only against literals. Ordered by created_at, not id, so that the connects are
 * read from the window's start in that index's order (by id, the planner walks the whole log).
 */
export async function selectUnclosedConnects(
  db: Db | Tx,
  orgId: string,
  opts: { since: Date; ownServerId: string; limit: number },
): Promise<AuditRow[]> {
  const closed = alias(auditLogs, 'closed');
  const connectionId = sql`(${auditLogs.metadata} ->> 'connectionId')`;
  const serverId = sql`coalesce(${auditLogs.metadata} ->> 'serverId', '')`;
  return db
    .select()
    .from(auditLogs)
    .where(
      and(
        eq(auditLogs.orgId, orgId),
        sql`${auditLogs.event} = 'access.connect'`,
        gte(auditLogs.createdAt, opts.since),
        sql`${connectionId} is not null`,
        sql`${serverId} <> ${opts.ownServerId}`,
        sql`not exists (select 1 from pg_stat_activity a
                         where a.datname = current_database()
                           and a.application_name = ${`${SERVER_APPLICATION_NAME} `} || ${serverId})`,
        notExists(
          db
            .select({ one: sql`1` })
            .from(closed)
            .where(
              and(
                eq(closed.orgId, orgId),
                sql`${closed.event} = 'access.disconnect'`,
                sql`(${closed.metadata} ->> 'connectionId') = ${connectionId}`,
              ),
            ),
        ),
      ),
    )
    .orderBy(asc(auditLogs.createdAt))
    .limit(opts.limit);
}

/**
 * Runs `fn` in a transaction that holds the sweep's lock: two servers sweeping at once (one
 * losing the single-node lock mid-sweep, another taking it) take turns, and the second finds
 * what the first wrote, so no connection is recorded as lost twice.
 */
export function withSweepLock<T>(db: Db, fn: (tx: Tx) => Promise<T>): Promise<T> {
  return db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(hashtext('gatepool:lost-connections'))`);
    return fn(tx);
  });
}

export async function insertOrgEntries(
  tx: Tx,
  orgId: string,
  entries: NewAuditRow[],
): Promise<void> {
  if (entries.some((e) => e.orgId !== orgId)) throw new Error('audit entries of another org');
  for (let i = 0; i < entries.length; i += INSERT_CHUNK)
    await tx.insert(auditLogs).values(entries.slice(i, i + INSERT_CHUNK));
}
