import { count } from 'drizzle-orm';
import type { FastifyBaseLogger } from 'fastify';
import { AuditLog } from './audit/service.js';
import { RateLimiter } from './auth/rate-limit.js';
import { buildApp } from './app.js';
import type { Config } from './config.js';
import type { AppContext } from './context.js';
import { loadRootKey, SecretBox } from './crypto/envelope.js';
import { openDatabase, type Database } from './db/client.js';
import { migrate } from './db/migrate.js';
import { users } from './db/schema.js';
import type { Api } from './http/schemas.js';
import { LicenseVerifier, readPublicKeyPem } from './license/license.js';
import { LicenseService } from './license/service.js';

export interface Platform {
  app: Api;
  ctx: AppContext;
  /** Base URL of the HTTP API, e.g. http://127.0.0.1:8080 */
  url: string;
  close(): Promise<void>;
}

export interface StartOptions {
  logger: FastifyBaseLogger;
  /** Use this database instead of opening one from config (tests); it is closed with the platform. */
  database?: Database;
}

export async function openConfiguredDatabase(config: Config): Promise<Database> {
  return config.databaseUrl
    ? openDatabase({ url: config.databaseUrl })
    : openDatabase({ dataDir: `${config.dataDir}/pglite` });
}

function licenseVerifier(config: Config): LicenseVerifier {
  if (!config.licensePublicKey) return new LicenseVerifier(undefined);
  try {
    return new LicenseVerifier(readPublicKeyPem(config.licensePublicKey));
  } catch (err) {
    throw new Error(
      `GATEPOOL_LICENSE_PUBLIC_KEY: cannot read a PEM public key from it (${(err as Error).message})`,
    );
  }
}

export async function startPlatform(config: Config, opts: StartOptions): Promise<Platform> {
  const log = opts.logger;
  const verifier = licenseVerifier(config);
  const root = loadRootKey({ key: config.encryptionKey, dataDir: config.dataDir });
  const database = opts.database ?? (await openConfiguredDatabase(config));
  try {
    const { applied } = await migrate(database);
    if (applied.length) log.info({ migrations: applied }, `applied ${applied.length} migration(s)`);
  } catch (err) {
    await database.close();
    throw err;
  }
  const ctx: AppContext = {
    config,
    database,
    db: database.db,
    box: new SecretBox(root.key),
    audit: new AuditLog(database.db),
    licenses: new LicenseService(database.db, verifier),
    log,
    limits: {
      loginPerIp: new RateLimiter(20, 60_000),
      loginPerAccount: new RateLimiter(5, 60_000),
      publicPerIp: new RateLimiter(30, 60_000),
    },
  };
  const app = await buildApp(ctx, { logger: log });
  await app.listen({ host: config.host, port: config.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const shownHost = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;
  const url = `http://${shownHost.includes(':') ? `[${shownHost}]` : shownHost}:${port}`;
  let closing: Promise<void> | undefined;
  return {
    app,
    ctx,
    url,
    close() {
      // app.close() stops accepting, lets in-flight requests finish, then the DB goes.
      closing ??= app.close().then(() => database.close());
      return closing;
    },
  };
}

/** True while no user exists: the operator still has to create the first admin. */
export async function needsBootstrap(ctx: AppContext): Promise<boolean> {
  const [row] = await ctx.db.select({ n: count() }).from(users);
  return Number(row?.n ?? 0) === 0;
}
