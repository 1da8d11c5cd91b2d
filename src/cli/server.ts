import { readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { ConfigError, loadConfig, type Config } from '../server/config.js';
import { generatedRootKeyNotice, rootKeyFile } from '../server/crypto/envelope.js';
import { listenError } from '../server/listen-error.js';

/**
 * The platform's modules (Fastify, database drivers, …) are imported by the commands that use
 * them, not at start: `gatepool gateway start` on a gateway host then loads only the agent —
 * half the heap (so cheaper garbage collection on the data path) and half the start-up time.
 */
export const platformModules = async () => {
  const [server, migrations, logger] = await Promise.all([
    import('../server/server.js'),
    import('../server/db/migrate.js'),
    import('../server/logger.js'),
  ]);
  return { ...server, ...migrations, ...logger };
};

/** Flags override the environment variable of the same setting. */
const FLAG_ENV: Record<string, string> = {
  host: 'GATEPOOL_HOST',
  port: 'GATEPOOL_PORT',
  tunnelPort: 'GATEPOOL_TUNNEL_PORT',
  tunnelHostname: 'GATEPOOL_TUNNEL_HOSTNAME',
  publicUrl: 'GATEPOOL_PUBLIC_URL',
  dataDir: 'GATEPOOL_DATA_DIR',
  databaseUrl: 'DATABASE_URL',
  licensePublicKey: 'GATEPOOL_LICENSE_PUBLIC_KEY',
  logLevel: 'GATEPOOL_LOG_LEVEL',
  trustProxy: 'GATEPOOL_TRUST_PROXY',
  sessionTtlSeconds: 'GATEPOOL_SESSION_TTL_SECONDS',
  keepaliveMs: 'GATEPOOL_KEEPALIVE_MS',
  deadAfterMs: 'GATEPOOL_DEAD_AFTER_MS',
  enrollRateLimit: 'GATEPOOL_ENROLL_RATE_LIMIT',
  loginRateLimit: 'GATEPOOL_LOGIN_RATE_LIMIT',
  k8sLoginRateLimit: 'GATEPOOL_K8S_LOGIN_RATE_LIMIT',
  directTargets: 'GATEPOOL_DIRECT_TARGETS',
  backupInterval: 'GATEPOOL_BACKUP_INTERVAL',
  backupKeep: 'GATEPOOL_BACKUP_KEEP',
  accessPredial: 'GATEPOOL_ACCESS_PREDIAL',
};

export function configFromFlags(flags: Record<string, unknown>): Config {
  const env: Record<string, string | undefined> = { ...process.env };
  for (const [flag, key] of Object.entries(FLAG_ENV)) {
    const value = flags[flag];
    if (typeof value === 'string') env[key] = value;
  }
  return loadConfig(env);
}

/**
 * Before migrating an embedded database that has data, a copy goes to DATA_DIR/backups (as the
 * server does at start): an upgrade run by hand deserves the same safety net.
 */
export async function snapshotFirst(
  database: import('../server/db/client.js').Database,
  config: Config,
): Promise<void> {
  if (!database.snapshot) return;
  const { rootKeyOf, snapshotBeforeMigrations } = await import('../server/db/backup.js');
  const print = (fields: Record<string, unknown>, message: string) =>
    process.stderr.write(`gatepool: ${message}${fields.path ? `: ${String(fields.path)}` : ''}\n`);
  await snapshotBeforeMigrations(
    database,
    config.dataDir,
    rootKeyOf(config.dataDir, !!config.encryptionKey),
    config.backupKeep,
    { info: print, warn: print },
  );
}

export function fail(message: string): never {
  process.stderr.write(`gatepool: ${message}\n`);
  process.exit(1);
}

const ERRNO_WORDS: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOENT: 'no such file or directory',
  ENOSPC: 'no space left on device',
  EROFS: 'read-only file system',
  EEXIST: 'file exists',
  ENOTDIR: 'not a directory',
  EISDIR: 'is a directory',
};

/**
 * One line about any thrown value. Not everything thrown has a message (PGlite's file system
 * errors carry only an errno), and a bare "undefined" tells the operator nothing.
 */
export function errorText(err: unknown): string {
  const e = (typeof err === 'object' && err !== null ? err : {}) as {
    message?: unknown;
    code?: unknown;
    errno?: unknown;
    syscall?: unknown;
    path?: unknown;
    name?: unknown;
  };
  const path = typeof e.path === 'string' ? e.path : undefined;
  const code = typeof e.code === 'string' ? e.code : undefined;
  const owner = (code === 'EPERM' || code === 'EACCES') && path ? foreignOwnerNote(path) : '';
  if (typeof e.message === 'string' && e.message) return e.message + owner;
  if (typeof err === 'string' && err) return err;
  const words =
    (code && (ERRNO_WORDS[code] ?? code)) ??
    (typeof e.errno === 'number' ? `error number ${e.errno}` : undefined);
  const what = [
    typeof e.name === 'string' && e.name !== 'Error' ? e.name : undefined,
    words,
    typeof e.syscall === 'string' ? e.syscall : undefined,
    path,
  ].filter(Boolean);
  return what.length ? what.join(': ') + owner : `an error without a description (${String(err)})`;
}

/** Who to run as, when a file this process may not change belongs to another user. */
function foreignOwnerNote(path: string): string {
  try {
    const { uid } = statSync(path);
    const me = process.getuid?.();
    if (me === undefined || uid === me) return '';
    return ` — ${path} is owned by another user (uid ${uid}; this is uid ${me}): run gatepool as its owner, or chown it to uid ${me}`;
  } catch {
    return '';
  }
}

/**
 * Removes DATA_DIR/pglite when a first start was interrupted before the platform served: it
 * holds at most a half-initialised database (nothing anyone wrote), which the next start could
 * mistake for a real one. The root key, if already generated, stays: it encrypts nothing yet.
 */
function removeUnfinishedDatabase(dataDir: string): void {
  try {
    // Only while this process holds the directory: before it took the lock, the files may be
    // another server's, in the middle of its own first start.
    const holder = JSON.parse(readFileSync(join(dataDir, 'gatepool.lock'), 'utf8')) as {
      pid?: unknown;
    };
    if (holder.pid !== process.pid) return;
    rmSync(join(dataDir, 'pglite'), { recursive: true, force: true });
  } catch {
    // exiting anyway; the next start reports what it finds
  }
}

/** Why host:port cannot be listened on now, or undefined (port 0: any free port will do). */
function listenProblem(host: string, port: number): Promise<Error | undefined> {
  if (port === 0) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', resolve);
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve(undefined)));
  });
}

function withConfig(flags: Record<string, unknown>): Config {
  try {
    return configFromFlags(flags);
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message);
    throw err;
  }
}

/** What `migrate` uses: the database, and where a pre-migration snapshot goes. */
function addDatabaseFlags(cmd: Command): Command {
  return cmd
    .option(
      '--data-dir <dir>',
      'embedded database and root key (GATEPOOL_DATA_DIR, default ./data)',
    )
    .option('--database-url <url>', 'PostgreSQL instead of the embedded database (DATABASE_URL)')
    .option('--backup-keep <n>', 'snapshots kept in DATA_DIR/backups (GATEPOOL_BACKUP_KEEP, 7)');
}

function addConfigFlags(cmd: Command): Command {
  return cmd
    .option('--host <host>', 'address to listen on (GATEPOOL_HOST, default 0.0.0.0)')
    .option('--port <port>', 'HTTP API port (GATEPOOL_PORT, default 8080)')
    .option('--tunnel-port <port>', 'gateway tunnel port (GATEPOOL_TUNNEL_PORT, default 8443)')
    .option('--tunnel-hostname <name>', 'hostname gateways dial (GATEPOOL_TUNNEL_HOSTNAME)')
    .option('--public-url <url>', 'URL users open (GATEPOOL_PUBLIC_URL)')
    .option(
      '--data-dir <dir>',
      'embedded database and root key (GATEPOOL_DATA_DIR, default ./data)',
    )
    .option('--database-url <url>', 'PostgreSQL instead of the embedded database (DATABASE_URL)')
    .option('--license-public-key <pemOrPath>', 'trusted license key (GATEPOOL_LICENSE_PUBLIC_KEY)')
    .option(
      '--trust-proxy <proxies>',
      'believe X-Forwarded-For from: true|loopback|CIDRs (GATEPOOL_TRUST_PROXY)',
    )
    .option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent (GATEPOOL_LOG_LEVEL)')
    .option(
      '--session-ttl-seconds <s>',
      'login session lifetime (GATEPOOL_SESSION_TTL_SECONDS, 43200)',
    )
    .option('--keepalive-ms <ms>', 'tunnel keepalive interval (GATEPOOL_KEEPALIVE_MS, 250)')
    .option(
      '--dead-after-ms <ms>',
      'gateway silent this long is dead (GATEPOOL_DEAD_AFTER_MS, 1000)',
    )
    .option(
      '--enroll-rate-limit <n>',
      'enrollments per IP a minute (GATEPOOL_ENROLL_RATE_LIMIT, 30)',
    )
    .option(
      '--login-rate-limit <n>',
      'password logins per IP a minute (GATEPOOL_LOGIN_RATE_LIMIT, 20)',
    )
    .option(
      '--k8s-login-rate-limit <n>',
      'Kubernetes logins per IP a minute (GATEPOOL_K8S_LOGIN_RATE_LIMIT, 600)',
    )
    .option(
      '--direct-targets <rules>',
      'targets reached without a gateway (GATEPOOL_DIRECT_TARGETS)',
    )
    .option(
      '--backup-interval <d>',
      'embedded DB snapshots into DATA_DIR/backups: 30m, 6h, 1d or off (GATEPOOL_BACKUP_INTERVAL, 24h)',
    )
    .option('--backup-keep <n>', 'scheduled snapshots kept (GATEPOOL_BACKUP_KEEP, 7)')
    .option(
      '--access-predial <true|false>',
      'open PostgreSQL access targets ahead of `gatepool connect` clients (GATEPOOL_ACCESS_PREDIAL, true)',
    )
    .addHelpText(
      'after',
      '\nEnvironment only (secrets stay out of the process list): GATEPOOL_ENCRYPTION_KEY,\n' +
        'GATEPOOL_METRICS_TOKEN, GATEPOOL_ADMIN_PASSWORD.',
    );
}

export function registerServerCommands(program: Command): void {
  addConfigFlags(
    program.command('server').description('run the platform (API and gateway tunnel)'),
  ).action(async (flags: Record<string, unknown>) => {
    const config = withConfig(flags);
    const { createLogger, needsBootstrap, openConfiguredDatabase, startPlatform } =
      await platformModules();
    const log = createLogger(config.logLevel);
    const { isDatabaseUnavailable } = await import('../server/db/errors.js');
    // No database error may end the platform: a lost connection fails its request (503) or
    // its background round, which retries. Anything else unhandled still stops it, loudly.
    process.on('unhandledRejection', (err) => {
      if (isDatabaseUnavailable(err)) {
        log.warn({ err: (err as Error).message }, 'database unavailable (background work)');
        return;
      }
      log.fatal({ err }, 'unhandled rejection');
      process.exit(1);
    });
    // A port in use is found before a new data directory is opened: opening it creates it, its
    // database and a root key, which a refused start must not leave behind. An existing one is
    // opened first, so that a second server on it is told so (the more useful line).
    const { hasEmbeddedDatabase } = await import('../server/db/embedded.js');
    if (config.databaseUrl || !hasEmbeddedDatabase(config.dataDir)) {
      for (const [port, setting] of [
        [config.port, 'GATEPOOL_PORT'],
        [config.tunnelPort, 'GATEPOOL_TUNNEL_PORT'],
      ] as const) {
        const problem = await listenProblem(config.host, port);
        if (problem) fail(listenError(problem, setting).message);
      }
    }
    // A new embedded database takes PGlite's initdb and every migration: many seconds of
    // silence that look like a hung terminal, so say what is happening first.
    const firstStart = !config.databaseUrl && !hasEmbeddedDatabase(config.dataDir);
    if (firstStart)
      process.stdout.write(
        `Preparing the embedded database in ${config.dataDir} (first start; this takes a few seconds)…\n`,
      );
    // Until the platform is up, a signal's default action would end the process without its
    // 'exit' hooks, leaving the lock file and socket behind; exiting runs them. A database this
    // start was still creating is removed too: the next start creates it again from nothing.
    const interrupted = (signal: NodeJS.Signals) => {
      process.stderr.write(`gatepool: ${signal} during start; stopped before serving\n`);
      if (firstStart && !config.databaseUrl) removeUnfinishedDatabase(config.dataDir);
      process.exit(signal === 'SIGINT' ? 130 : 143);
    };
    process.on('SIGINT', interrupted);
    process.on('SIGTERM', interrupted);
    // Opened here rather than by startPlatform, so that every refusal below closes it, and with
    // it the data directory's lock, before exiting (startPlatform does not on all of its paths).
    const opened = await openConfiguredDatabase(config).catch((err: unknown) =>
      fail(errorText(err)),
    );
    let closing: Promise<void> | undefined;
    const database = { ...opened, close: () => (closing ??= opened.close()) };
    let platform;
    try {
      const { rootKeyProblem } = await import('../server/crypto/root-key.js');
      const keyProblem = await rootKeyProblem(database, {
        key: config.encryptionKey,
        dataDir: config.dataDir,
      });
      if (keyProblem) throw new Error(keyProblem);
      platform = await startPlatform(config, { logger: log, database });
    } catch (err) {
      await database.close().catch(() => undefined);
      fail(errorText(err));
    }
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) {
        process.stderr.write('gatepool: forced exit\n');
        process.exit(1);
      }
      stopping = true;
      log.info({ signal }, 'shutting down: finishing in-flight requests');
      platform.close().then(
        () => {
          log.info('stopped');
          process.exit(0);
        },
        (err: unknown) => {
          log.error({ err }, 'error during shutdown');
          process.exit(1);
        },
      );
    };
    process.off('SIGINT', interrupted);
    process.off('SIGTERM', interrupted);
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    const db = config.databaseUrl ? 'PostgreSQL' : `embedded PGlite in ${config.dataDir}`;
    const open = config.publicUrl ?? platform.url;
    let banner =
      `\ngatepool is running (${db}).\n  Open      ${open}\n  API docs  ${open}/api/docs\n` +
      `  Tunnel    gateways dial ${platform.ctx.directory.tunnelAddress}\n`;
    if (config.tunnelHostname === 'localhost')
      banner +=
        `            (only gateways on this host can: set GATEPOOL_TUNNEL_HOSTNAME, or GATEPOOL_PUBLIC_URL,\n` +
        `            to the name gateways reach this platform by)\n`;
    if (platform.rootKeyGenerated)
      banner += `  Root key  ${generatedRootKeyNotice(platform.rootKeyGenerated)}\n`;
    else if (config.databaseUrl && !config.encryptionKey)
      // The database and its key live apart: say where the key is on every start.
      banner += `  Root key  ${resolve(rootKeyFile(config.dataDir))} (keep it with the database's backups, or set GATEPOOL_ENCRYPTION_KEY)\n`;
    process.stdout.write(banner);
    if (await needsBootstrap(platform.ctx)) {
      process.stdout.write(
        `\nFirst start: open ${open} in a browser to create the first admin and organization,\n` +
          `or from a shell:\n` +
          `  curl -X POST ${open}/api/v1/bootstrap -H 'content-type: application/json' \\\n` +
          `    -d '{"email":"you@example.com","password":"at-least-12-chars","organizationName":"Acme"}'\n\n`,
      );
    }
  });

  addDatabaseFlags(
    program.command('migrate').description('apply pending database migrations and exit'),
  ).action(async (flags: Record<string, unknown>) => {
    const config = withConfig(flags);
    const { migrate, openConfiguredDatabase } = await platformModules();
    const database = await openConfiguredDatabase(config).catch((err: unknown) =>
      fail(errorText(err)),
    );
    let failed: unknown;
    try {
      await snapshotFirst(database, config);
      const { applied, alreadyApplied } = await migrate(database);
      process.stdout.write(
        applied.length
          ? `applied ${applied.length} migration(s): ${applied.join(', ')}\n`
          : `database is up to date (${alreadyApplied} migration(s) applied earlier)\n`,
      );
    } catch (err) {
      failed = err;
    } finally {
      await database.close();
    }
    if (failed !== undefined) fail(errorText(failed));
  });
}
