import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { Database } from './client.js';
import { isDatabaseUnavailable } from './errors.js';
import { pendingMigrations } from './migrate.js';

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
  const file = join(dataDir, 'root.key');
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
  return gzipSync(tar(entries));
}

export function readBackup(file: Buffer, name: string): Backup {
  let entries: Map<string, Buffer>;
  try {
    entries = untar(gunzipSync(file));
  } catch {
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

/** Writes a backup file 0600 (it may hold the root key) without ever leaving half a file. */
export function writeBackupFile(path: string, bytes: Buffer): void {
  const tmp = `${path}.partial-${process.pid}`;
  writeFileSync(tmp, bytes, { mode: 0o600, flag: 'wx' });
  renameSync(tmp, path);
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

// --- a minimal ustar writer/reader: three regular files, no dependency for it -------------------

function tar(entries: { name: string; data: Buffer }[]): Buffer {
  const parts: Buffer[] = [];
  const mtime = Math.floor(Date.now() / 1000);
  for (const { name, data } of entries) {
    const h = Buffer.alloc(512);
    h.write(name, 0, 100, 'utf8');
    h.write('0000600\0', 100, 'ascii');
    h.write('0000000\0', 108, 'ascii');
    h.write('0000000\0', 116, 'ascii');
    h.write(`${data.length.toString(8).padStart(11, '0')}\0`, 124, 'ascii');
    h.write(`${mtime.toString(8).padStart(11, '0')}\0`, 136, 'ascii');
    h.write('        ', 148, 'ascii');
    h.write('0', 156, 'ascii');
    h.write('ustar\u000000', 257, 'ascii');
    let sum = 0;
    for (const b of h) sum += b;
    h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
    parts.push(h, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

function untar(buf: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (let off = 0; off + 512 <= buf.length;) {
    const h = buf.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    const name = h.subarray(0, 100).toString('utf8').replace(/\0.*$/s, '');
    const size = parseInt(h.subarray(124, 136).toString('ascii').replace(/\0.*$/s, '').trim(), 8);
    if (!Number.isFinite(size) || off + 512 + size > buf.length) throw new Error('truncated tar');
    if (h[156] === 0x30 || h[156] === 0) out.set(name, buf.subarray(off + 512, off + 512 + size));
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}
