import { existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { Config } from '../server/config.js';
import { configFromFlags, fail } from './server.js';

const PG_BACKUP_HINT =
  'DATABASE_URL is set: back up PostgreSQL with `pg_dump --format=custom --file=gatepool.dump "$DATABASE_URL"` ' +
  'and keep the root key (GATEPOOL_ENCRYPTION_KEY, or DATA_DIR/root.key) with it; see the README, "Backups".';
const PG_RESTORE_HINT =
  'DATABASE_URL is set: restore PostgreSQL with `pg_restore --clean --if-exists --dbname="$DATABASE_URL" gatepool.dump` ' +
  'and start the platform with the same root key; see the README, "Backups".';

/** Files of a data directory that do not make it "in use" for a restore. */
const IGNORABLE = new Set(['gatepool.sock', 'gatepool.sock.takeover', 'backups']);

/**
 * Runs fn with the embedded database when no server holds the data directory; otherwise asks
 * the server that holds it (online). Used by every command that reads or writes the database.
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
    database = await openEmbeddedDatabase(config.dataDir);
  } catch (err) {
    if (err instanceof DataDirInUseError)
      return online(join(config.dataDir, SOCKET_NAME), err.holderPid);
    fail((err as Error).message);
  }
  try {
    return await offline(database);
  } finally {
    await database.close();
  }
}

function rootKeyNote(included: boolean): string {
  return included
    ? 'The root key is INSIDE this file: whoever has it can decrypt every secret the platform ' +
        'stores. It is written with mode 0600; keep it encrypted at rest (e.g. gpg --symmetric) ' +
        'and never next to untrusted copies.'
    : 'The root key is NOT inside (GATEPOOL_ENCRYPTION_KEY is set): store that key safely ' +
        'elsewhere; without it this backup restores, but its secrets cannot be read.';
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
      if (existsSync(opts.out) && !opts.force)
        fail(`${opts.out} exists; choose another --out or add --force to overwrite it`);
      const [{ backupForOperator }, { request }, { pgliteDir }, { writeBackupFile }] =
        await Promise.all([
          import('../server/local-admin/service.js'),
          import('../server/db/datadir-lock.js'),
          import('../server/db/embedded.js'),
          import('../server/db/backup.js'),
        ]);
      if (!existsSync(pgliteDir(config.dataDir)))
        fail(
          `there is no embedded database in ${config.dataDir} (no ${pgliteDir(config.dataDir)})`,
        );
      const result = await embeddedOrServer(
        config,
        async (database) => ({ ...(await backupForOperator(database, config)), from: 'offline' }),
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
            from: `the running server${pid ? ` (pid ${pid})` : ''}`,
          };
        },
      );
      try {
        if (opts.force && existsSync(opts.out)) renameSync(opts.out, `${opts.out}.old`);
        writeBackupFile(opts.out, result.bytes);
      } catch (err) {
        fail(`cannot write ${opts.out}: ${(err as Error).message}`);
      }
      process.stdout.write(
        `wrote ${opts.out} (${(result.bytes.length / 1e6).toFixed(1)} MB, ${result.migrations} ` +
          `migrations; taken by ${result.from}).\n${rootKeyNote(result.rootKeyIncluded)}\n` +
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
      const [{ readBackup }, { lockDataDir }, { pgliteDir }, { openDatabase }] = await Promise.all([
        import('../server/db/backup.js'),
        import('../server/db/datadir-lock.js'),
        import('../server/db/embedded.js'),
        import('../server/db/client.js'),
      ]);
      let file: Buffer;
      try {
        file = readFileSync(opts.from);
      } catch (err) {
        fail(`cannot read ${opts.from}: ${(err as Error).message}`);
      }
      let backup;
      try {
        backup = readBackup(file, opts.from);
      } catch (err) {
        fail((err as Error).message);
      }
      const lock = await lockDataDir(config.dataDir).catch((err: Error) => fail(err.message));
      try {
        const present = readdirSync(config.dataDir).filter((f) => !IGNORABLE.has(f));
        const moved: string[] = [];
        if (present.length) {
          if (!opts.force)
            fail(
              `${config.dataDir} is not empty (${present.slice(0, 5).join(', ')}): restore into an ` +
                `empty directory, or add --force to move what is there aside`,
            );
          const suffix = `before-restore-${new Date().toISOString().replaceAll(':', '-')}`;
          for (const name of ['pglite', 'root.key'])
            if (present.includes(name)) {
              renameSync(join(config.dataDir, name), join(config.dataDir, `${name}.${suffix}`));
              moved.push(`${name} → ${name}.${suffix}`);
            }
        }
        const database = await openDatabase({
          dataDir: pgliteDir(config.dataDir),
          loadDataDir: new Blob([new Uint8Array(backup.dump)]),
        });
        try {
          await database.ping();
        } finally {
          await database.close();
        }
        if (backup.rootKey)
          writeFileSync(join(config.dataDir, 'root.key'), backup.rootKey, {
            mode: 0o600,
            flag: 'wx',
          });
        process.stdout.write(
          `restored ${opts.from} (taken ${backup.manifest.createdAt}, ${backup.manifest.migrations.length} ` +
            `migrations) into ${config.dataDir}.\n` +
            (moved.length ? `Moved aside: ${moved.join(', ')}.\n` : '') +
            (backup.rootKey
              ? 'The root key was restored with it (root.key, 0600).\n'
              : 'The backup has no root key: start the platform with the GATEPOOL_ENCRYPTION_KEY it ' +
                'was taken with, or its secrets cannot be read.\n') +
            `Start the platform with GATEPOOL_DATA_DIR=${config.dataDir}.\n`,
        );
      } finally {
        await lock.release();
      }
    });
}
