import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { openDatabase, type Database } from './client.js';
import { lockDataDir } from './datadir-lock.js';

/** Where PGlite keeps its files inside GATEPOOL_DATA_DIR. */
export const pgliteDir = (dataDir: string) => join(dataDir, 'pglite');

/**
 * Whether dataDir holds an embedded database. PG_VERSION is the first file PostgreSQL writes
 * into a data directory: a `pglite` directory without it (e.g. left empty by an interrupted
 * copy) holds no database, and opening it would silently create a new, empty one.
 */
export function hasEmbeddedDatabase(dataDir: string): boolean {
  return existsSync(join(pgliteDir(dataDir), 'PG_VERSION'));
}

export class NoEmbeddedDatabaseError extends Error {
  constructor(readonly dataDir: string) {
    const dir = pgliteDir(dataDir);
    super(
      `no gatepool database in ${dataDir} (${existsSync(dir) ? `${dir} is empty` : `no ${dir}`}): ` +
        `point GATEPOOL_DATA_DIR (or --data-dir) at the platform's data directory, or set DATABASE_URL`,
    );
  }
}

/**
 * Opens the embedded database of a data directory, holding the directory's lock for as long
 * as it is open; throws DataDirInUseError (touching nothing) when another process holds it.
 * With mustExist, a directory without a database is refused instead of getting a new one.
 */
export async function openEmbeddedDatabase(
  dataDir: string,
  opts: { mustExist?: boolean } = {},
): Promise<Database> {
  const lock = await lockDataDir(dataDir);
  let database: Database;
  try {
    if (opts.mustExist && !hasEmbeddedDatabase(dataDir)) throw new NoEmbeddedDatabaseError(dataDir);
    database = await openDatabase({ dataDir: pgliteDir(dataDir) });
  } catch (err) {
    await lock.release();
    throw explainOpenError(err, pgliteDir(dataDir));
  }
  return {
    ...database,
    lock,
    async close() {
      try {
        await database.close();
      } finally {
        await lock.release();
      }
    },
  };
}

// PGlite's file system layer throws Emscripten errors: {name: 'ErrnoError', errno}, no message,
// with WASI numbers (not the host's). The ones an operator can meet, in words.
const WASI_ERRNO: Record<number, string> = {
  2: 'permission denied',
  10: 'device or resource busy',
  20: 'file exists',
  28: 'invalid argument',
  29: 'input/output error',
  31: 'is a directory',
  33: 'too many open files',
  44: 'no such file or directory',
  48: 'out of memory',
  51: 'no space left on device',
  54: 'not a directory',
  55: 'directory not empty',
  63: 'operation not permitted',
  69: 'read-only file system',
};

/**
 * An error from opening PGlite as something a person can act on: its message when it has
 * one, otherwise its errno in words and, for a permission error, who owns the files.
 */
export function explainOpenError(err: unknown, dir: string): unknown {
  if (err instanceof Error && err.message) return err;
  const errno = (err as { errno?: unknown } | null)?.errno;
  if (typeof errno !== 'number') return err;
  const words = WASI_ERRNO[errno] ?? `error number ${errno}`;
  const owner = errno === 2 || errno === 63 ? foreignOwner(dir) : undefined;
  return new Error(
    `cannot open the embedded database in ${dir}: ${words}` +
      (owner
        ? ` (${owner.path} belongs to uid ${owner.uid}, gatepool runs as uid ${owner.me}): run ` +
          `gatepool as the user that owns the data directory, or chown -R it to uid ${owner.me}`
        : ''),
    { cause: err },
  );
}

/** The first file under dir (a bounded walk) that this process's user does not own. */
function foreignOwner(dir: string): { path: string; uid: number; me: number } | undefined {
  const me = process.getuid?.();
  if (me === undefined) return undefined;
  const queue = [dir];
  for (let seen = 0; queue.length && seen < 10_000; seen++) {
    const path = queue.shift()!;
    try {
      const st = statSync(path);
      if (st.uid !== me) return { path, uid: st.uid, me };
      if (st.isDirectory()) for (const name of readdirSync(path)) queue.push(join(path, name));
    } catch {
      // unreadable or gone: its parent, if foreign, was reported already
    }
  }
  return undefined;
}
