/**
 * Access connections a crash left open in the audit log. A connection's `access.disconnect` is
 * written when it ends, or by a graceful stop (AccessConnector.closeAll); a platform killed with
 * connections open never writes it, and its `access.connect` would read as a connection still
 * open, forever. So when a server becomes the server of its database (embedded: it holds the data
 * directory; PostgreSQL: it holds the single-node lock, db/node-watch.ts) it writes the missing
 * end of each connection opened by a server that is gone, with `result: "lost"`.
 *
 * Only the holder looks: a waiting server would take the live holder's connections for lost. The
 * holder leaves out its own connections and those of every server with a session on the database
 * (see queries.ts). A server cut off from the database for longer than a takeover may still write
 * the real end later; both entries then carry the same connectionId.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { Db } from '../db/client.js';
import {
  insertOrgEntries,
  selectOrgIds,
  selectUnclosedConnects,
  withSweepLock,
  type NewAuditRow,
} from './queries.js';

/** Older connects are left alone: the sweep reads a bounded window at every start. */
export const LOST_WINDOW_MS = 30 * 24 * 60 * 60_000;
/** Entries written per org and sweep; the rest wait for the next one. */
export const LOST_BATCH = 10_000;
export const LOST_ERROR =
  "the platform stopped without recording this connection's end (crash or kill); " +
  'it ended at the latest when the platform stopped';

export interface LostSweep {
  recorded: number;
  /** Orgs with more than LOST_BATCH such connections: the rest is recorded by the next sweep. */
  more: string[];
}

export async function recordLostConnections(
  db: Db,
  ownServerId: string,
  opts: {
    now?: Date;
    windowMs?: number;
    batch?: number;
    /** Told after each org's entries are committed (a later org may still fail). */
    onRecorded?: (n: number) => void;
  } = {},
): Promise<LostSweep> {
  const since = new Date((opts.now ?? new Date()).getTime() - (opts.windowMs ?? LOST_WINDOW_MS));
  const batch = opts.batch ?? LOST_BATCH;
  const result: LostSweep = { recorded: 0, more: [] };
  for (const orgId of await selectOrgIds(db)) {
    const written = await withSweepLock(db, async (tx) => {
      const open = await selectUnclosedConnects(tx, orgId, {
        since,
        ownServerId,
        limit: batch + 1,
      });
      if (open.length > batch) result.more.push(orgId);
      const entries: NewAuditRow[] = open.slice(0, batch).map((connect) => ({
        orgId,
        event: 'access.disconnect',
        // The connection's own actor: the entry reads as the end of their connection.
        actorType: connect.actorType,
        actorId: connect.actorId,
        actorName: connect.actorName,
        metadata: {
          ...connect.metadata,
          result: 'lost',
          error: LOST_ERROR,
          // Unknown: counted in the memory of the process that died.
          bytesToTarget: null,
          bytesFromTarget: null,
          durationMs: null,
        },
        ip: connect.ip,
        userAgent: connect.userAgent,
      }));
      await insertOrgEntries(tx, orgId, entries);
      return entries.length;
    });
    result.recorded += written;
    opts.onRecorded?.(written);
  }
  return result;
}

/**
 * Runs the sweep each time this server becomes the server of its database, one at a time,
 * reporting to the log and metrics.
 */
export class LostConnectionSweeper {
  private running: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly db: Db,
    private readonly serverId: string,
    private readonly log: FastifyBaseLogger,
    private readonly count: (n: number) => void,
  ) {}

  run(): void {
    if (this.closed) return;
    this.running = this.running.then(async () => {
      try {
        // Counted even when 0: the series exists once a sweep ran, for alerts on its increase.
        const { recorded, more } = await recordLostConnections(this.db, this.serverId, {
          onRecorded: (n) => this.count(n),
        });
        if (recorded)
          this.log.warn(
            { recorded },
            `recorded ${recorded} access connections as lost (the platform had stopped without closing them)`,
          );
        if (more.length)
          this.log.warn(
            { orgs: more, batch: LOST_BATCH },
            `more than ${LOST_BATCH} lost access connections in an organization: the rest are recorded by the next sweep (next start or takeover)`,
          );
      } catch (err) {
        // The database is away: they stay unrecorded until the next start or takeover sweeps.
        this.log.warn({ err }, 'could not record lost access connections');
      }
    });
  }

  /**
   * Starts no more sweeps (a lock taken during shutdown must not start one on a closing
   * database) and resolves once none runs.
   */
  close(): Promise<void> {
    this.closed = true;
    return this.running;
  }
}
