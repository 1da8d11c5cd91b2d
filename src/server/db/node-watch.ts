/**
 * One platform server per PostgreSQL database, for now: several nodes (DESIGN §10: gateways
 * keeping a tunnel to every node, caches invalidated over LISTEN/NOTIFY) are not built. A second
 * server on the same database still starts (migrations run under their own lock; restarts and
 * rollouts briefly overlap), but gateways connect to one server only, so the other sees them as
 * unreachable, and revocations reach its credential cache only within 30 s. Running two behind a
 * load balancer fails about half of all connections, silently: this says so, loudly.
 *
 * How: each server holds a session advisory lock on a connection of its own. One that cannot take
 * it warns, naming the holder, and tries again every 30 s (it takes over once the other stops). A
 * server whose host vanished releases the lock within ~30 s: the connection asks PostgreSQL for
 * TCP keepalives.
 *
 * The session also says which server it is (`application_name` "gatepool server <serverId>"), so
 * that the holder can tell connections of a live server from those of a dead one
 * (audit/lost-connections.ts).
 */
import pg from 'pg';

/**
 * The lock's two-int key: gatepool's own space ("gpl") and 1 for "platform node". The two-int form
 * keeps it apart from the migrations' bigint lock and readable in pg_locks (objsubid 2).
 */
const LOCK_SPACE = 0x67706c;
const LOCK_NODE = 1;
const RETRY_MS = 30_000;
/** Followed by the server's id in `application_name` (audit/queries.ts reads it back). */
export const SERVER_APPLICATION_NAME = 'gatepool server';

export interface NodeWatch {
  close(): Promise<void>;
}

interface Holder {
  client_addr: string | null;
  backend_start: Date | null;
  application_name: string | null;
}

/** The words of the warning: who holds the database, and what running two means. */
export function secondNodeWarning(holder: Holder | undefined): string {
  // The server's id in the name means nothing to an operator.
  const name = holder?.application_name?.startsWith(SERVER_APPLICATION_NAME)
    ? SERVER_APPLICATION_NAME
    : holder?.application_name;
  const who = holder
    ? ` (${name || 'a gatepool server'} connected from ${holder.client_addr ?? 'a local socket'}` +
      `${holder.backend_start ? ` since ${holder.backend_start.toISOString()}` : ''})`
    : '';
  return (
    `another gatepool server is running on this database${who}. gatepool runs one server per ` +
    'database for now: gateways connect to one server only, so each server reaches only its own ' +
    'gateways. Behind a load balancer about half of all connections would fail. Stop one of them ' +
    '(a restart or rollout may overlap briefly; this server takes over once the other stops).'
  );
}

export interface NodeWatchOptions {
  /** This server's id, in `application_name`. */
  serverId?: string;
  /**
   * Called when this server becomes the server of the database: it takes the lock for the first
   * time, or after another server held it. Not when it takes back a lock it lost with its own
   * session (a PostgreSQL restart): other servers' sessions may not be back yet, and their
   * connections would look like a dead server's.
   */
  onHeld?: () => void;
}

export function watchSingleNode(
  url: string,
  warn: (message: string) => void,
  info: (message: string) => void,
  retryMs = RETRY_MS,
  opts: NodeWatchOptions = {},
): NodeWatch {
  let client: pg.Client | undefined;
  let held = false;
  let everHeld = false;
  let warned = false;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;

  /**
   * One try at the lock; true when it spent its time waiting for the lock (so the next try may
   * follow at once), false when the next should wait `retryMs`.
   */
  const attempt = async (): Promise<boolean> => {
    if (stopped || held) return false;
    try {
      if (!client) {
        const c = new pg.Client({
          connectionString: url,
          application_name: opts.serverId
            ? `${SERVER_APPLICATION_NAME} ${opts.serverId}`
            : SERVER_APPLICATION_NAME,
          keepAlive: true,
          // A database that hangs (not refuses) must not hold this check, or shutdown, forever.
          connectionTimeoutMillis: 5000,
          query_timeout: 5000,
        });
        // A lost connection (a PostgreSQL restart) loses the lock: take it again next time.
        c.on('error', () => undefined);
        c.on('end', () => {
          if (client === c) {
            client = undefined;
            held = false;
          }
        });
        await c.connect();
        client = c;
        // PostgreSQL drops the session of a vanished host, and with it the lock, in ~30 s.
        await c.query(
          'set tcp_keepalives_idle = 10; set tcp_keepalives_interval = 5; set tcp_keepalives_count = 4',
        );
        // The wait below gives up after retryMs; a session waiting there when this server stops
        // must not stay in the lock's queue (PostgreSQL 14+ notices the gone client; older
        // versions keep it until lock_timeout).
        await c.query(`set lock_timeout = ${Math.max(1, Math.round(retryMs))}`);
        await c.query("set client_connection_check_interval = '1s'").catch(() => undefined);
      }
      const { rows } = await client.query<{ ok: boolean }>(
        'select pg_try_advisory_lock($1::int, $2::int) as ok',
        [LOCK_SPACE, LOCK_NODE],
      );
      if (rows[0]?.ok === true) {
        took();
        return false;
      }
      if (!warned) {
        warned = true;
        const { rows: holders } = await client.query<Holder>(
          `select host(a.client_addr) as client_addr, a.backend_start, a.application_name
             from pg_locks l join pg_stat_activity a on a.pid = l.pid
            where l.locktype = 'advisory' and l.granted and l.objsubid = 2
              and l.classid = $1::int::oid and l.objid = $2::int::oid
              and l.database = (select oid from pg_database where datname = current_database())
            limit 1`,
          [LOCK_SPACE, LOCK_NODE],
        );
        warn(secondNodeWarning(holders[0]));
      }
      // Wait in the lock's queue rather than poll: the moment the other server's session ends
      // (it stops, or is killed), this one holds the lock — a rolling restart hands over at once.
      // node-postgres takes query_timeout per query too (its types know only the client's).
      const wait: pg.QueryConfig & { query_timeout: number } = {
        text: 'select pg_advisory_lock($1::int, $2::int)',
        values: [LOCK_SPACE, LOCK_NODE],
        query_timeout: retryMs + 5000,
      };
      const started = Date.now();
      try {
        await client.query(wait);
      } catch (err) {
        // lock_timeout: still held elsewhere. Try again at once (the wait was the pause), unless
        // it came back early.
        if ((err as { code?: string }).code === '55P03') return Date.now() - started >= retryMs / 2;
        throw err;
      }
      if (stopped) return false;
      took();
      return false;
    } catch {
      // The database is away: the outage is reported elsewhere; try again later.
      const c = client;
      client = undefined;
      held = false;
      await c?.end().catch(() => undefined);
      return false;
    }
  };

  const took = (): void => {
    held = true;
    if (warned) info('the other gatepool server on this database has stopped');
    const becameServer = warned || !everHeld;
    warned = false;
    everHeld = true;
    if (becameServer) opts.onHeld?.();
  };

  const loop = (waited: boolean): void => {
    if (stopped) return;
    timer = setTimeout(() => void attempt().then(loop), waited ? 0 : retryMs);
    timer.unref();
  };
  void attempt().then(loop);

  return {
    async close() {
      stopped = true;
      clearTimeout(timer);
      // Ending the session releases the lock at once: the next server need not wait.
      await client?.end().catch(() => undefined);
    },
  };
}
