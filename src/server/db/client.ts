import { chmodSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { sql, type SQL } from 'drizzle-orm';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import pg from 'pg';
import type { DataDirLock } from './datadir-lock.js';
import { readDataDir } from './data-dir-dump.js';
import { DatabaseUnavailableError, isDatabaseUnavailable } from './errors.js';
import * as schema from './schema.js';
import { gzipChunks, tarChunks, TarNameTooLongError } from './tar.js';

/** The one query interface every feature uses, whichever driver is underneath. */
export type Db = PgDatabase<PgQueryResultHKT, typeof schema>;
export type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];

/** The rows of a raw query (`db.execute`): both drivers answer it with `{ rows }`. */
export async function rowsOf(db: Db | Tx, query: SQL): Promise<Record<string, unknown>[]> {
  const res = (await db.execute(query)) as unknown as { rows: Record<string, unknown>[] };
  return res.rows;
}

/** A raw connection inside one transaction, for scripts (migrations) drizzle cannot run. */
export interface ScriptRunner {
  exec(script: string): Promise<void>;
  query<T>(text: string, params?: unknown[]): Promise<T[]>;
}

export interface Database {
  db: Db;
  driver: 'pglite' | 'postgres';
  /** Runs fn in one transaction on a single raw connection. */
  withScriptTransaction<T>(fn: (r: ScriptRunner) => Promise<T>): Promise<T>;
  ping(): Promise<void>;
  /**
   * Embedded database only: a consistent gzip tarball of its data directory, taken while no
   * transaction is open (PostgreSQL is backed up with pg_dump).
   */
  snapshot?(): Promise<Blob>;
  /** Embedded database in a data directory: the lock this process holds on it (datadir-lock). */
  lock?: DataDirLock;
  close(): Promise<void>;
}

export type DatabaseOptions =
  { url: string; poolSize?: number } | { dataDir?: string; loadDataDir?: Blob };

const READ_ONLY = /^\s*select\b/i;

/**
 * A plain read (outside any transaction) that meets a connection the server has just closed
 * is retried once on a fresh connection: reading twice is harmless, and after a PostgreSQL
 * restart the pool's older connections are all dead, so the first try would fail for nothing.
 */
function retryReadsOnce(pool: pg.Pool): void {
  const query = pool.query.bind(pool) as (...args: unknown[]) => Promise<unknown>;
  const retrying = async (...args: unknown[]): Promise<unknown> => {
    try {
      return await query(...args);
    } catch (err) {
      const first = args[0];
      const text = typeof first === 'string' ? first : (first as { text?: unknown })?.text;
      if (!isDatabaseUnavailable(err, true)) throw err;
      if (typeof text !== 'string' || !READ_ONLY.test(text))
        throw new DatabaseUnavailableError(err);
      return query(...args).catch((again: unknown) => {
        throw isDatabaseUnavailable(again, true) ? new DatabaseUnavailableError(again) : again;
      });
    }
  };
  // Transactions check a client out first; no server means no client.
  const connect = pool.connect.bind(pool) as (...args: unknown[]) => Promise<unknown>;
  pool.connect = ((...args: unknown[]) =>
    typeof args[0] === 'function'
      ? connect(...args)
      : connect().then(releaseOnFailedBegin, (err: unknown) => {
          throw isDatabaseUnavailable(err, true) ? new DatabaseUnavailableError(err) : err;
        })) as unknown as typeof pool.connect;
  // Only the promise form is used (drizzle, ping); callbacks go straight to pg.
  pool.query = ((...args: unknown[]) =>
    typeof args[args.length - 1] === 'function'
      ? query(...args)
      : retrying(...args)) as unknown as typeof pool.query;
}

const BEGIN = /^\s*begin\b/i;
const guarded = new WeakSet<object>();

/**
 * drizzle sends BEGIN before its try/finally, so a client whose connection died just then is
 * never released: after a few such failures during a restart the pool has no client left and
 * every request times out until the process restarts. A failed BEGIN on a lost connection
 * releases (and so destroys) the client itself; drizzle then only rethrows.
 */
function releaseOnFailedBegin(client: unknown): unknown {
  const c = client as pg.PoolClient;
  if (guarded.has(c)) return c;
  guarded.add(c);
  const query = c.query.bind(c) as (...args: unknown[]) => Promise<unknown>;
  c.query = ((...args: unknown[]) => {
    const first = args[0];
    const text = typeof first === 'string' ? first : (first as { text?: unknown })?.text;
    if (
      typeof args[args.length - 1] === 'function' ||
      typeof text !== 'string' ||
      !BEGIN.test(text)
    )
      return query(...args);
    return query(...args).catch((err: unknown) => {
      if (isDatabaseUnavailable(err, true)) c.release(err instanceof Error ? err : true);
      throw err;
    });
  }) as unknown as typeof c.query;
  return c;
}

export async function openDatabase(opts: DatabaseOptions): Promise<Database> {
  if ('url' in opts) return openPostgres(opts.url, opts.poolSize ?? 10);
  return openPglite(opts.dataDir, opts.loadDataDir);
}

async function openPostgres(url: string, max: number): Promise<Database> {
  // A connect attempt while the server is away fails within seconds instead of hanging requests.
  const pool = new pg.Pool({ connectionString: url, max, connectionTimeoutMillis: 5_000 });
  // A client losing its server (restart, failover) emits 'error'. The pool listens only while
  // a client is idle; one checked out (e.g. between the queries of a transaction) has no
  // listener, and an unheard 'error' ends the process. Every client gets one for its life:
  // the query in flight fails on its own and the pool drops the broken client at release.
  pool.on('error', () => undefined);
  pool.on('connect', (client) => client.on('error', () => undefined));
  retryReadsOnce(pool);
  const db = drizzlePg(pool, { schema }) as unknown as Db;
  await pool.query('select 1');
  return {
    db,
    driver: 'postgres',
    async withScriptTransaction(fn) {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const result = await fn({
          exec: async (s) => void (await client.query(s)),
          query: async <T>(text: string, params?: unknown[]) =>
            (await client.query(text, params)).rows as T[],
        });
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      } finally {
        client.release();
      }
    },
    ping: async () => void (await pool.query('select 1')),
    close: () => pool.end(),
  };
}

async function openPglite(
  dataDir: string | undefined,
  loadDataDir: Blob | undefined,
): Promise<Database> {
  const restoreUmask = dataDir ? privateFiles() : () => undefined;
  if (dataDir) mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  let client: PGlite;
  try {
    client = new PGlite({ dataDir, loadDataDir });
    await client.waitReady;
  } catch (err) {
    restoreUmask();
    throw err;
  }
  if (dataDir) makePrivate(dataDir);
  // Files PostgreSQL creates later (WAL segments, new tables) are fixed within a minute.
  const sweep = dataDir
    ? setInterval(() => {
        try {
          makePrivate(dataDir);
        } catch {
          // the next sweep, snapshot or close tries again
        }
      }, 60_000).unref()
    : undefined;
  const db = drizzlePglite(client, { schema }) as unknown as Db;
  return {
    db,
    driver: 'pglite',
    withScriptTransaction: (fn) =>
      client.transaction((tx) =>
        fn({
          exec: async (s) => void (await tx.exec(s)),
          query: async <T>(text: string, params?: unknown[]) =>
            (await tx.query<T>(text, params)).rows,
        }),
      ),
    ping: async () => void (await db.execute(sql`select 1`)),
    async snapshot() {
      // A checkpoint first, so the copy needs no WAL replay to open; then the copy itself while
      // no query or transaction can run (query() takes both mutexes, in this order;
      // transaction() holds the first for its whole life), so no file changes under it.
      await client.query('CHECKPOINT');
      if (!dataDir) return client._runExclusiveTransaction(() => client.dumpDataDir('gzip'));
      // PGlite's own dumpDataDir reads and tars every file synchronously, stalling the whole
      // platform (API, tunnels, keepalives) for the length of the copy. The same files, read
      // asynchronously and compressed on the thread pool, hold up only the database, and
      // only for the reads (the compression runs after the mutexes are released).
      const files = await client._runExclusiveTransaction(() =>
        client._runExclusiveQuery(() => readDataDir(dataDir)),
      );
      makePrivate(dataDir);
      let tarball: Buffer[];
      try {
        tarball = tarChunks(files);
      } catch (err) {
        // A name ustar cannot hold (PostgreSQL's are short): PGlite's own dump, stall and all.
        if (!(err instanceof TarNameTooLongError)) throw err;
        return client._runExclusiveTransaction(() => client.dumpDataDir('gzip'));
      }
      return new Blob([new Uint8Array(await gzipChunks(tarball))], { type: 'application/x-gzip' });
    },
    async close() {
      clearInterval(sweep);
      try {
        await client.close();
      } finally {
        if (dataDir) makePrivate(dataDir);
        restoreUmask();
      }
    },
  };
}

let privateOpeners = 0;
let umaskBefore: number | undefined;

/**
 * New directories of the embedded database are created 0700 while it is open (its files are
 * chmod'ed by PGlite itself, see makePrivate). Counted, so the umask comes back only when the
 * last embedded database in this process closes.
 */
function privateFiles(): () => void {
  if (privateOpeners++ === 0) umaskBefore = process.umask(0o077);
  let restored = false;
  return () => {
    if (restored) return;
    restored = true;
    if (--privateOpeners === 0 && umaskBefore !== undefined) process.umask(umaskBefore);
  };
}

/**
 * PGlite's file system layer creates files 0666 whatever the umask. The data directory is
 * 0700, so nobody else can reach them, but copies (tar, rsync, backups) keep modes: set 0600
 * on files and 0700 on directories at open, after snapshots and at close.
 */
export function makePrivate(dir: string): void {
  chmodSync(dir, 0o700);
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    try {
      if (entry.isDirectory()) makePrivate(path);
      else if (entry.isFile()) chmodSync(path, 0o600);
    } catch (err) {
      // A file PostgreSQL removed meanwhile (temporary files, recycled WAL) needs nothing.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
}
