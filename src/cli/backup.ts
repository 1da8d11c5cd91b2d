import {
  accessSync,
  constants,
  existsSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmdirSync,
  statSync,
} from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import type { Command } from 'commander';
import type { Config } from '../server/config.js';
import { configFromFlags, errorText, fail } from './server.js';

const PG_BACKUP_HINT =
  'DATABASE_URL is set: back up PostgreSQL with `pg_dump --format=custom --file=gatepool.dump "$DATABASE_URL"` ' +
  'and keep the root key (GATEPOOL_ENCRYPTION_KEY, or DATA_DIR/root.key) with it; see the README, "Backups".';
const PG_RESTORE_HINT =
  'DATABASE_URL is set: restore PostgreSQL with `pg_restore --clean --if-exists --dbname="$DATABASE_URL" gatepool.dump` ' +
  'and start the platform with the same root key; see the README, "Backups".';

/**
 * Runs fn with the embedded database when no server holds the data directory; otherwise asks
 * the server that holds it (online). Used by every command that reads or writes the database.
 * A directory without a database is refused: opening it would create an empty one, and the
 * command would then act on a database no platform uses.
 */
export async function embeddedOrServer<T>(
  config: Config,
  offline: (database: import('../server/db/client.js').Database) => Promise<T>,
  online: (socketPath: string, holderPid: number | undefined) => Promise<T>,
): Promise<T> {
  const [{ openEmbeddedDatabase }, { DataDirInUseError, SOCKET_NAME }] = await Promise.all([
    import('../server/db/embedded.js'),
    import('../server/db/datadir-lock.js'),
  ]);
  let database;
  try {
    database = await openEmbeddedDatabase(config.dataDir, { mustExist: true });
  } catch (err) {
    // A holder whose socket was deleted cannot be asked: the refusal names it instead.
    if (err instanceof DataDirInUseError && !err.socketGone)
      return online(join(config.dataDir, SOCKET_NAME), err.holderPid);
    fail(errorText(err));
  }
  try {
    return await offline(database);
  } finally {
    await database.close();
  }
}

/**
 * What to tell about the root key. When it is not inside, the reason is read from this
 * command's own environment and files: a running server does not say why it left it out.
 */
function rootKeyNote(included: boolean, config: Config): string {
  if (included)
    return (
      'The root key is INSIDE this file: whoever has it can decrypt every secret the platform ' +
      'stores. It is written with mode 0600; keep it encrypted at rest (e.g. gpg --symmetric) ' +
      'and never next to untrusted copies.'
    );
  const keyFile = join(config.dataDir, 'root.key');
  const [why, keep] = config.encryptionKey
    ? ['GATEPOOL_ENCRYPTION_KEY is set', 'store GATEPOOL_ENCRYPTION_KEY safely elsewhere']
    : existsSync(keyFile)
      ? [
          `the running server uses GATEPOOL_ENCRYPTION_KEY, not ${keyFile}`,
          'store the GATEPOOL_ENCRYPTION_KEY the server runs with safely elsewhere',
        ]
      : [
          `there is no ${keyFile}`,
          'keep the key the platform stored its secrets with (its GATEPOOL_ENCRYPTION_KEY, or a ' +
            'copy of its root.key) safely elsewhere',
        ];
  return (
    `The root key is NOT inside (${why}): ${keep}; without it this backup restores, but its ` +
    'secrets (CA keys, reviewer JWTs, …) cannot be read.'
  );
}

/** The real path of p, or of its nearest existing ancestor joined with the rest. */
function realOrResolved(p: string): string {
  const abs = resolve(p);
  try {
    return realpathSync(abs);
  } catch {
    const parent = dirname(abs);
    return parent === abs ? abs : join(realOrResolved(parent), basename(abs));
  }
}

/** Whether path is dir or below it, after symbolic links (./data and a link to it are one). */
function isInside(dir: string, path: string): boolean {
  const rel = relative(realOrResolved(dir), realOrResolved(path));
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
}

/** Why a file cannot be written into dir, or undefined when it can. */
function directoryProblem(dir: string): string | undefined {
  let isDir: boolean;
  try {
    isDir = statSync(dir).isDirectory();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      return `the directory ${dir} does not exist (create it first: mkdir -p ${dir})`;
    return `cannot use the directory ${dir}: ${errorText(err)}`;
  }
  if (!isDir) return `${dir} is not a directory`;
  try {
    accessSync(dir, constants.W_OK);
  } catch {
    return `this user may not write into ${dir}`;
  }
  return undefined;
}

export function registerBackupCommands(program: Command): void {
  program
    .command('backup')
    .description('write a consistent backup of the embedded database (works while the server runs)')
    .requiredOption('--out <file>', 'backup file to write (a .tar.gz; mode 0600)')
    .option('--data-dir <dir>', 'data directory (GATEPOOL_DATA_DIR, default ./data)')
    .option('--database-url <url>', 'PostgreSQL URL (DATABASE_URL): explains pg_dump instead')
    .option('--force', 'overwrite --out if it exists')
    .action(async (opts: { out: string; force?: boolean } & Record<string, unknown>) => {
      const config = configFromFlags(opts);
      if (config.databaseUrl) fail(PG_BACKUP_HINT);
      const outDir = dirname(resolve(opts.out));
      // A file in the data directory is swept into the next backup (PGlite dumps its whole
      // directory) and restored with it, each backup nesting the one before.
      if (isInside(config.dataDir, resolve(opts.out)))
        fail(
          `--out ${opts.out} is inside the data directory ${config.dataDir}: write backups ` +
            `elsewhere (e.g. /backups/gatepool.tar.gz); nothing was backed up`,
        );
      // Before the snapshot: finding out only when writing wastes its seconds and says less.
      const dirProblem = directoryProblem(outDir);
      if (dirProblem) fail(`cannot write ${opts.out}: ${dirProblem}; nothing was backed up`);
      if (existsSync(opts.out) && !opts.force)
        fail(`${opts.out} exists; choose another --out or add --force to overwrite it`);
      const [
        { backupForOperator },
        { request },
        { hasEmbeddedDatabase, NoEmbeddedDatabaseError },
        { BackupExistsError, writeBackupFile },
      ] = await Promise.all([
        import('../server/local-admin/service.js'),
        import('../server/db/datadir-lock.js'),
        import('../server/db/embedded.js'),
        import('../server/db/backup.js'),
      ]);
      // Before the lock, which would create a missing directory just to find nothing in it.
      if (!hasEmbeddedDatabase(config.dataDir))
        fail(new NoEmbeddedDatabaseError(config.dataDir).message);
      const result = await embeddedOrServer(
        config,
        async (database) => ({
          ...(await backupForOperator(database, config)),
          from: 'offline (no server was running)',
        }),
        async (socketPath, pid) => {
          const answer = await request(socketPath, { op: 'backup' }, 10 * 60_000).catch(
            (err: Error) =>
              fail(`the server holding ${config.dataDir} did not answer: ${err.message}`),
          );
          if (!answer.body.ok) fail(String(answer.body.error));
          return {
            bytes: answer.data ?? Buffer.alloc(0),
            rootKeyIncluded: answer.body.rootKeyIncluded === true,
            migrations: Number(answer.body.migrations),
            from: `by the running server${pid ? ` (pid ${pid})` : ''}`,
          };
        },
      );
      // A database nothing ever migrated is not a platform's: most likely the wrong directory.
      if (!result.migrations)
        fail(
          `the database in ${config.dataDir} has no gatepool tables (0 migrations applied): it is ` +
            `not a platform's database, so nothing was written. Point GATEPOOL_DATA_DIR (or ` +
            `--data-dir) at the platform's data directory.`,
        );
      try {
        if (opts.force && existsSync(opts.out)) renameSync(opts.out, `${opts.out}.old`);
        writeBackupFile(opts.out, result.bytes, { exclusive: !opts.force });
      } catch (err) {
        if (err instanceof BackupExistsError)
          fail(
            `${opts.out} exists (written meanwhile by another backup); this backup was not ` +
              `written: choose another --out or add --force to overwrite it`,
          );
        fail(`cannot write ${opts.out}: ${errorText(err)}`);
      }
      process.stdout.write(
        `wrote ${opts.out} (${(result.bytes.length / 1e6).toFixed(1)} MB, ${result.migrations} ` +
          `migrations; taken ${result.from}).\n${rootKeyNote(result.rootKeyIncluded, config)}\n` +
          `Restore it with: gatepool restore --from ${opts.out} --data-dir <empty dir>\n`,
      );
    });

  program
    .command('restore')
    .description('restore a backup into an empty or missing data directory (server stopped)')
    .requiredOption('--from <file>', 'backup file written by `gatepool backup`')
    .option(
      '--data-dir <dir>',
      'data directory to restore into (GATEPOOL_DATA_DIR, default ./data)',
    )
    .option('--database-url <url>', 'PostgreSQL URL (DATABASE_URL): explains pg_restore instead')
    .option('--force', 'restore into a non-empty data directory, moving what is there aside')
    .action(async (opts: { from: string; force?: boolean } & Record<string, unknown>) => {
      const config = configFromFlags(opts);
      if (config.databaseUrl) fail(PG_RESTORE_HINT);
      const [{ readBackup, restoreBackup }, { lockDataDir }] = await Promise.all([
        import('../server/db/backup.js'),
        import('../server/db/datadir-lock.js'),
      ]);
      let file: Buffer;
      try {
        file = readFileSync(opts.from);
      } catch (err) {
        fail(`cannot read ${opts.from}: ${errorText(err)}`);
      }
      let backup;
      try {
        backup = readBackup(file, opts.from);
      } catch (err) {
        fail(`${errorText(err)}; ${config.dataDir} is untouched`);
      }
      const existed = existsSync(config.dataDir);
      const lock = await lockDataDir(config.dataDir).catch((err: unknown) => fail(errorText(err)));
      // Errors are carried past the lock's release: fail() exits on the spot.
      let outcome: Awaited<ReturnType<typeof restoreBackup>> | { error: unknown };
      try {
        outcome = await restoreBackup(backup, opts.from, config.dataDir, { force: !!opts.force });
      } catch (error) {
        outcome = { error };
      } finally {
        await lock.release();
      }
      if ('error' in outcome) {
        // A directory made only to hold the lock goes again: a refused restore leaves nothing.
        if (!existed)
          try {
            rmdirSync(config.dataDir);
          } catch {
            // not empty after all: leave it
          }
        fail(errorText(outcome.error));
      }
      process.stdout.write(
        `restored ${opts.from} (taken ${backup.manifest.createdAt}, ${outcome.migrations} ` +
          `migrations) into ${config.dataDir}.\n` +
          (outcome.moved.length ? `Moved aside: ${outcome.moved.join(', ')}.\n` : '') +
          (backup.rootKey
            ? 'The root key was restored with it (root.key, 0600).\n'
            : 'The backup has no root key: start the platform with the GATEPOOL_ENCRYPTION_KEY it ' +
              'was taken with, or its secrets cannot be read.\n') +
          `Start the platform with GATEPOOL_DATA_DIR=${config.dataDir}.\n`,
      );
    });
}
