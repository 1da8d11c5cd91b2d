import {
  existsSync,
  linkSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmdirSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { parseKey, rootKeyFile } from '../crypto/envelope.js';
import { openDatabase, type Database } from './client.js';
import { LOCK_FILE_NAME, SOCKET_NAME, TAKEOVER_NAME } from './datadir-lock.js';
import { explainOpenError, pgliteDir } from './embedded.js';
import { isDatabaseUnavailable } from './errors.js';
import { pendingMigrations } from './migrate.js';
import { gzipChunks, tarChunks, untar } from './tar.js';

/**
 * A backup of the embedded database: a .tar.gz (inspect it with `tar tzf`) holding
 *   manifest.json   what it is, when, which migrations, whether the root key is inside
 *   pglite.tar.gz   PGlite's own dump of its data directory (taken after a CHECKPOINT)
 *   root.key        the key that decrypts the stored secrets, when it lives in the data dir
 * Without the root key the secrets in the dump (CA keys, reviewer JWTs, …) cannot be read.
 */
export const BACKUP_FORMAT = 'gatepool-backup';
export const BACKUP_SUFFIX = '.tar.gz';

export interface BackupManifest {
  format: typeof BACKUP_FORMAT;
  version: 1;
  createdAt: string;
  migrations: string[];
  rootKeyIncluded: boolean;
}

export interface Backup {
  manifest: BackupManifest;
  dump: Buffer;
  rootKey?: Buffer;
}

export class BackupFileError extends Error {}

/** The root key file of a data directory, if the key lives there (not GATEPOOL_ENCRYPTION_KEY). */
export function rootKeyOf(dataDir: string, encryptionKeyFromEnv: boolean): Buffer | undefined {
  if (encryptionKeyFromEnv) return undefined;
  const file = rootKeyFile(dataDir);
  return existsSync(file) ? readFileSync(file) : undefined;
}

/** A consistent backup of a live embedded database, as the bytes of a backup file. */
export async function takeBackup(database: Database, rootKey: Buffer | undefined): Promise<Buffer> {
  if (!database.snapshot)
    throw new BackupFileError(
      'backups of PostgreSQL are made with pg_dump (see the README, "Backups")',
    );
  const migrations = await appliedMigrations(database);
  const dump = Buffer.from(await (await database.snapshot()).arrayBuffer());
  const manifest: BackupManifest = {
    format: BACKUP_FORMAT,
    version: 1,
    createdAt: new Date().toISOString(),
    migrations,
    rootKeyIncluded: !!rootKey,
  };
  const entries: { name: string; data: Buffer }[] = [
    { name: 'manifest.json', data: Buffer.from(JSON.stringify(manifest, null, 2)) },
    { name: 'pglite.tar.gz', data: dump },
  ];
  if (rootKey) entries.push({ name: 'root.key', data: rootKey });
  // Off the event loop, like the dump; the dump inside is gzip already, so the fastest level.
  return gzipChunks(tarChunks(entries), 1);
}

export function readBackup(file: Buffer, name: string): Backup {
  let entries: Map<string, Buffer>;
  try {
    entries = untar(gunzipSync(file));
  } catch (err) {
    // gzip's magic bytes: it was meant to be one, so the file is damaged (most often a copy cut
    // short), not something else given by mistake.
    if (file[0] === 0x1f && file[1] === 0x8b)
      throw new BackupFileError(
        `${name} is damaged: it cannot be read to its end as a .tar.gz (${(err as Error).message}); ` +
          `a copy cut short? Compare its size with the original`,
      );
    throw new BackupFileError(`${name} is not a gatepool backup (not a .tar.gz)`);
  }
  const manifestText = entries.get('manifest.json');
  const dump = entries.get('pglite.tar.gz');
  let manifest: BackupManifest | undefined;
  try {
    manifest = manifestText
      ? (JSON.parse(manifestText.toString('utf8')) as BackupManifest)
      : undefined;
  } catch {
    manifest = undefined;
  }
  if (!manifest || manifest.format !== BACKUP_FORMAT || !dump)
    throw new BackupFileError(`${name} is not a gatepool backup (no manifest or dump inside)`);
  if (manifest.version !== 1)
    throw new BackupFileError(
      `${name} has backup format version ${manifest.version}; this gatepool reads version 1`,
    );
  return { manifest, dump, rootKey: entries.get('root.key') };
}

/**
 * Checks, without loading it, that the dump is what PGlite wrote: a complete gzip of a complete
 * tar holding a PostgreSQL data directory. PGlite reports a damaged dump badly (a truncated one
 * even ends the process from inside its decompression stream), so it never sees one.
 */
export function checkDump(dump: Buffer, name: string): void {
  let entries: Map<string, Buffer>;
  try {
    entries = untar(gunzipSync(dump));
  } catch (err) {
    throw new BackupFileError(
      `${name} is damaged: its database dump (pglite.tar.gz) cannot be read (${(err as Error).message})`,
    );
  }
  if (!entries.has('/PG_VERSION') && !entries.has('PG_VERSION'))
    throw new BackupFileError(
      `${name} is damaged: its database dump (pglite.tar.gz) holds no PostgreSQL data directory`,
    );
}

/** Checks the root key inside a backup: 32 bytes, written as the platform writes it. */
export function checkRootKey(rootKey: Buffer, name: string): void {
  const length = parseKey(rootKey.toString('utf8')).length;
  if (length !== 32)
    throw new BackupFileError(
      `${name} is damaged: its root.key is not a 32-byte key (it decodes to ${length} bytes)`,
    );
}

/** Files of a data directory that do not make it "in use" for a restore. */
const IGNORABLE = new Set([SOCKET_NAME, LOCK_FILE_NAME, TAKEOVER_NAME, 'backups']);
/** Where a restore builds the new database before it replaces anything (inside DATA_DIR). */
const STAGING_PREFIX = 'pglite.restoring-';
const KEY_STAGING_PREFIX = 'root.key.restoring-';

export class RestoreRefusedError extends Error {}

export interface RestoreResult {
  /** What was moved aside, as "name → new name". */
  moved: string[];
  /** Migrations applied in the restored database. */
  migrations: number;
}

/**
 * Restores backup into dataDir, whose lock the caller holds. Everything that can fail happens
 * before anything existing is touched: the dump is checked, loaded into a staging directory
 * next to `pglite`, opened and its migrations read; the root key is checked and staged. Only
 * then are the old `pglite` and `root.key` moved aside (with force) and the staged ones renamed
 * into place; a failing rename puts everything back. On any failure the staging is removed and
 * a RestoreRefusedError (or BackupFileError) says what was wrong; dataDir is as it was.
 */
export async function restoreBackup(
  backup: Backup,
  name: string,
  dataDir: string,
  opts: { force: boolean },
): Promise<RestoreResult> {
  // The lock is held: staging left by a restore that was killed belongs to nobody.
  for (const f of readdirSync(dataDir))
    if (f.startsWith(STAGING_PREFIX) || f.startsWith(KEY_STAGING_PREFIX))
      rmSync(join(dataDir, f), { recursive: true, force: true });
  const present = readdirSync(dataDir).filter(
    (f) => !IGNORABLE.has(f) && !(f === 'pglite' && isEmptyDir(join(dataDir, f))),
  );
  if (present.length && !opts.force)
    throw new RestoreRefusedError(
      `${dataDir} is not empty (${present.slice(0, 5).join(', ')}): restore into an empty ` +
        `directory, or add --force to move what is there aside`,
    );
  try {
    if (backup.rootKey) checkRootKey(backup.rootKey, name);
    checkDump(backup.dump, name);
  } catch (err) {
    throw new RestoreRefusedError(`${(err as Error).message}; ${dataDir} is untouched`);
  }

  const staging = join(dataDir, `${STAGING_PREFIX}${process.pid}`);
  const keyStaging = join(dataDir, `${KEY_STAGING_PREFIX}${process.pid}`);
  const unstage = () => {
    rmSync(staging, { recursive: true, force: true });
    rmSync(keyStaging, { force: true });
  };
  let migrations: string[];
  try {
    migrations = await loadAndVerify(backup, name, staging, dataDir);
    if (backup.rootKey) writeFileSync(keyStaging, backup.rootKey, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    unstage();
    if (err instanceof RestoreRefusedError) throw err;
    throw new RestoreRefusedError(
      `cannot stage the restore in ${dataDir} (${(err as Error).message}); ${dataDir} is untouched`,
    );
  }

  const suffix = `before-restore-${new Date().toISOString().replaceAll(':', '-')}`;
  const done: { from: string; to: string }[] = [];
  const move = (from: string, to: string) => {
    renameSync(join(dataDir, from), join(dataDir, to));
    done.push({ from, to });
  };
  try {
    for (const f of ['pglite', 'root.key']) if (present.includes(f)) move(f, `${f}.${suffix}`);
    // An empty pglite directory (not counted as present) is replaced, not kept aside.
    if (existsSync(pgliteDir(dataDir))) rmdirSync(pgliteDir(dataDir));
    move(`${STAGING_PREFIX}${process.pid}`, 'pglite');
    if (backup.rootKey) move(`${KEY_STAGING_PREFIX}${process.pid}`, 'root.key');
  } catch (err) {
    // Reverse order: the restored files leave their places before the old ones come back.
    const stuck: string[] = [];
    for (const { from, to } of done.reverse()) {
      try {
        renameSync(join(dataDir, to), join(dataDir, from));
      } catch {
        stuck.push(`${to} (was ${from})`);
      }
    }
    unstage();
    throw new RestoreRefusedError(
      `cannot put the restored database in place in ${dataDir} (${(err as Error).message})` +
        (stuck.length
          ? `; these could not be moved back, rename them by hand: ${stuck.join(', ')}`
          : `; ${dataDir} is as it was`),
    );
  }
  return {
    moved: done
      .filter(
        ({ from }) => !from.startsWith(STAGING_PREFIX) && !from.startsWith(KEY_STAGING_PREFIX),
      )
      .map(({ from, to }) => `${from} → ${to}`),
    migrations: migrations.length,
  };
}

// Host errors, as Node codes and as the WASI errno numbers PGlite's file system throws.
const HOST_CODES = new Set(['EACCES', 'EPERM', 'ENOSPC', 'EROFS', 'EIO', 'EMFILE', 'EDQUOT']);
const HOST_WASI_ERRNOS = new Set([2, 29, 33, 48, 51, 63, 69]);

function hostProblem(err: unknown): boolean {
  const { code, errno } = (err ?? {}) as { code?: unknown; errno?: unknown };
  if (typeof code === 'string') return HOST_CODES.has(code);
  return typeof errno === 'number' && HOST_WASI_ERRNOS.has(errno);
}

function isEmptyDir(path: string): boolean {
  try {
    return readdirSync(path).length === 0;
  } catch {
    return false;
  }
}

/** Loads the dump into dir, opens it and returns its migrations; refuses a database without. */
async function loadAndVerify(
  backup: Backup,
  name: string,
  dir: string,
  dataDir: string,
): Promise<string[]> {
  // PGlite reports some damage from inside its own streams, as an uncaught error rather than a
  // rejection of waitReady: caught here for the length of the load, as a refusal.
  let onFatal: (err: unknown) => void = () => undefined;
  const fatal = new Promise<never>((_, reject) => (onFatal = reject));
  process.on('uncaughtException', onFatal);
  process.on('unhandledRejection', onFatal);
  let database: Database | undefined;
  try {
    database = await Promise.race([
      openDatabase({ dataDir: dir, loadDataDir: new Blob([new Uint8Array(backup.dump)]) }),
      fatal,
    ]);
    const migrations = await Promise.race([appliedMigrations(database), fatal]);
    if (!migrations.length)
      throw new RestoreRefusedError(
        `${name} holds no gatepool database (no migrations in it); ${dataDir} is untouched`,
      );
    if ([...migrations].sort().join() !== [...backup.manifest.migrations].sort().join())
      throw new RestoreRefusedError(
        `${name} is damaged: its manifest lists ${backup.manifest.migrations.length} migrations, ` +
          `its database has ${migrations.length}; ${dataDir} is untouched`,
      );
    return migrations;
  } catch (err) {
    if (err instanceof RestoreRefusedError) throw err;
    const explained = explainOpenError(err, dir);
    const why = explained instanceof Error ? explained.message : String(explained);
    // A full disk or a permission is this host's problem, not the backup's: say which it is.
    throw new RestoreRefusedError(
      hostProblem(err)
        ? `cannot load ${name} into ${dataDir} (${why}); ${dataDir} is untouched`
        : `${name} is damaged: its database does not load (${why}); ${dataDir} is untouched`,
    );
  } finally {
    await database?.close().catch(() => undefined);
    process.off('uncaughtException', onFatal);
    process.off('unhandledRejection', onFatal);
    fatal.catch(() => undefined);
  }
}

export class BackupExistsError extends Error {
  constructor(readonly path: string) {
    super(`${path} exists`);
  }
}

/**
 * Writes a backup file 0600 (it may hold the root key) without ever leaving half a file. With
 * `exclusive`, the final name is claimed with link(), which fails if it exists (unlike rename):
 * of several backups to one path only one succeeds, and the others throw BackupExistsError
 * instead of reporting a file that another one replaced.
 */
export function writeBackupFile(
  path: string,
  bytes: Buffer,
  opts: { exclusive?: boolean } = {},
): void {
  const tmp = `${path}.partial-${process.pid}`;
  writeFileSync(tmp, bytes, { mode: 0o600, flag: 'wx' });
  if (!opts.exclusive) {
    renameSync(tmp, path);
    return;
  }
  try {
    linkSync(tmp, path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new BackupExistsError(path);
    throw err;
  } finally {
    rmSync(tmp, { force: true });
  }
}

async function appliedMigrations(database: Database): Promise<string[]> {
  return database.withScriptTransaction(async (r) => {
    const exists = await r.query<{ t: string | null }>(
      `SELECT to_regclass('schema_migrations')::text AS t`,
    );
    if (!exists[0]?.t) return [];
    return (
      await r.query<{ name: string }>('SELECT name FROM schema_migrations ORDER BY name')
    ).map((x) => x.name);
  });
}

// --- snapshots the platform makes by itself, in DATA_DIR/backups -----------------------------

export const backupsDir = (dataDir: string) => join(dataDir, 'backups');

/** `scheduled-2026-11-30T07-00-00-000Z.tar.gz`: sortable by name, safe in every file system. */
function snapshotName(kind: 'scheduled' | 'pre-migrate'): string {
  return `${kind}-${new Date().toISOString().replaceAll(':', '-').replace('.', '-')}${BACKUP_SUFFIX}`;
}

export async function writeSnapshot(
  database: Database,
  dataDir: string,
  rootKey: Buffer | undefined,
  kind: 'scheduled' | 'pre-migrate',
  keep: number,
): Promise<string> {
  const dir = backupsDir(dataDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, snapshotName(kind));
  writeBackupFile(path, await takeBackup(database, rootKey));
  const mine = readdirSync(dir)
    .filter((f) => f.startsWith(`${kind}-`) && f.endsWith(BACKUP_SUFFIX))
    .sort();
  for (const old of mine.slice(0, Math.max(0, mine.length - keep))) unlinkSync(join(dir, old));
  return path;
}

interface SnapshotLog {
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
}

/**
 * Upgrades are where data dies: before applying migrations to an embedded database that has
 * data (not a fresh one), it is copied to DATA_DIR/backups/pre-migrate-….tar.gz.
 */
export async function snapshotBeforeMigrations(
  database: Database,
  dataDir: string,
  rootKey: Buffer | undefined,
  keep: number,
  log: SnapshotLog,
): Promise<string | undefined> {
  if (!database.snapshot) return undefined;
  const { pending, applied } = await pendingMigrations(database);
  if (!pending.length || !applied) return undefined;
  const path = await writeSnapshot(database, dataDir, rootKey, 'pre-migrate', keep);
  log.info({ path, pending }, 'snapshot of the embedded database taken before migrating');
  return path;
}

/** Snapshots every intervalMs (0 = never); returns a stop function that waits for one running. */
export function scheduleSnapshots(
  database: Database,
  dataDir: string,
  rootKey: Buffer | undefined,
  opts: { intervalMs: number; keep: number },
  log: SnapshotLog,
): () => Promise<void> {
  if (!database.snapshot || opts.intervalMs <= 0) return async () => undefined;
  let running: Promise<void> | undefined;
  const timer = setInterval(() => {
    if (running) return;
    running = writeSnapshot(database, dataDir, rootKey, 'scheduled', opts.keep)
      .then(
        (path) => log.info({ path }, 'scheduled snapshot of the embedded database written'),
        (err: unknown) =>
          log.warn(
            { err: (err as Error).message, unavailable: isDatabaseUnavailable(err) },
            'scheduled snapshot failed; will try at the next interval',
          ),
      )
      .finally(() => (running = undefined));
  }, opts.intervalMs);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await running;
  };
}
