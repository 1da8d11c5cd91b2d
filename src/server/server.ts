import { count } from 'drizzle-orm';
import type { FastifyBaseLogger } from 'fastify';
import { accessTargetRoutes } from './access-targets/routes.js';
import { CaStore } from './gateways/ca-store.js';
import { CONSUMER_KINDS } from './consumer-kinds.js';
import { ConsumerRegistry } from './consumers/registry.js';
import { eventRoutes } from './events/routes.js';
import { enrollmentRoutes } from './gateways/enrollment-routes.js';
import { PlatformMetrics, tunnelMetrics } from './gateways/metrics.js';
import { GatewayDirectory } from './gateways/directory.js';
import { gatewayRoutes } from './gateways/routes.js';
import { kubernetesAuthRoutes } from './kubernetes-auth/routes.js';
import { poolRoutes } from './pools/routes.js';
import { PoolRuntime } from './pools/runtime.js';
import { TunnelHub } from './tunnel/hub.js';
import { AuditLog } from './audit/service.js';
import { LostConnectionSweeper } from './audit/lost-connections.js';
import { countLostConnections } from './access-targets/connector.js';
import { CredentialCache } from './auth/credential-cache.js';
import { RateLimiter } from './auth/rate-limit.js';
import { buildApp } from './app.js';
import type { Config } from './config.js';
import type { AppContext } from './context.js';
import { generatedRootKeyNotice, loadRootKey, SecretBox } from './crypto/envelope.js';
import { openDatabase, type Database } from './db/client.js';
import { watchSingleNode } from './db/node-watch.js';
import { migrate } from './db/migrate.js';
import { rootKeyOf, snapshotBeforeMigrations } from './db/backup.js';
import { openEmbeddedDatabase } from './db/embedded.js';
import { dbErrorMessage, isDatabaseUnavailable, outageLogger } from './db/errors.js';
import { startLocalAdmin } from './local-admin/service.js';
import { users } from './db/schema.js';
import type { Api } from './http/schemas.js';
import { LicenseVerifier, readPublicKeyPem } from './license/license.js';
import { LicenseService } from './license/service.js';
import { serveWeb } from './web/static.js';
import { listenError } from './listen-error.js';
import { metricsRoute } from './http/metrics-route.js';

export interface Platform {
  app: Api;
  ctx: AppContext;
  /** Base URL of the HTTP API, e.g. http://127.0.0.1:8080 */
  url: string;
  tunnelPort: number;
  /** Where the root key is when this start generated it (absolute), for the start banner. */
  rootKeyGenerated?: string;
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
    : openEmbeddedDatabase(config.dataDir);
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
  // The data directory's lock first: a second process on it stops here, having touched nothing.
  const database = opts.database ?? (await openConfiguredDatabase(config));
  let box: SecretBox;
  let rootKeyGenerated: string | undefined;
  try {
    const loaded = loadRootKey({ key: config.encryptionKey, dataDir: config.dataDir });
    box = new SecretBox(loaded.key);
    rootKeyGenerated = loaded.generated;
    // Said loudly: on PostgreSQL the key is the one thing of the platform's state that is not in
    // the database, and a data directory that does not survive a restart (a pod's) loses it.
    if (rootKeyGenerated)
      log.warn({ path: rootKeyGenerated }, generatedRootKeyNotice(rootKeyGenerated));
    const rootKey = rootKeyOf(config.dataDir, !!config.encryptionKey);
    await snapshotBeforeMigrations(database, config.dataDir, rootKey, config.backupKeep, log);
    const { applied } = await migrate(database);
    if (applied.length) log.info({ migrations: applied }, `applied ${applied.length} migration(s)`);
  } catch (err) {
    await database.close();
    throw err;
  }
  const cas = new CaStore(database.db, box);
  await cas.load();
  const serverCert = await cas.tunnelServerCert([config.tunnelHostname]);
  const auditOutage = outageLogger((fields, message) => log.warn(fields, message));
  const audit = new AuditLog(database.db, {
    onError: (err, dropped) => {
      if (dropped)
        log.error(
          { dropped },
          'audit queue full while the database is away: oldest entries dropped',
        );
      else if (isDatabaseUnavailable(err)) auditOutage('audit entries not written yet', err);
      else log.warn({ err: dbErrorMessage(err) }, 'audit entries not written yet; retrying');
    },
  });
  const metrics: PlatformMetrics = new PlatformMetrics(() => registry.healthCounts());
  const hub: TunnelHub = new TunnelHub({
    host: config.host,
    port: config.tunnelPort,
    serverCertPem: serverCert.certPem,
    serverKeyPem: serverCert.keyPem,
    caPems: () => cas.caPems(),
    // Called per handshake, only after listen(), when the registry below exists.
    identify: (info): ReturnType<GatewayDirectory['identify']> => registry.identify(info),
    keepaliveMs: config.keepaliveMs,
    deadAfterMs: config.deadAfterMs,
    log: log.child({ component: 'tunnel' }),
    metrics: tunnelMetrics(metrics),
  });
  const registry: GatewayDirectory = new GatewayDirectory(
    hub,
    cas,
    database.db,
    audit,
    log,
    config.deadAfterMs,
  );
  const pools = new PoolRuntime(database.db, registry, audit, metrics, log);
  const ctx: AppContext = {
    config,
    database,
    db: database.db,
    box,
    audit,
    licenses: new LicenseService(database.db, verifier),
    log,
    directory: registry,
    metrics,
    poolRuntime: pools,
    consumers: new ConsumerRegistry(CONSUMER_KINDS),
    credentials: new CredentialCache(),
    limits: {
      loginPerIp: new RateLimiter(config.loginRateLimit, 60_000),
      loginPerAccount: new RateLimiter(5, 60_000),
      enrollPerIp: new RateLimiter(config.enrollRateLimit, 60_000),
    },
  };
  const app = await buildApp(ctx, {
    logger: log,
    modules: [
      enrollmentRoutes,
      gatewayRoutes,
      poolRoutes,
      kubernetesAuthRoutes,
      eventRoutes,
      accessTargetRoutes,
    ],
    extra: (a) => {
      metricsRoute(a, metrics.registry, config.metricsToken);
      serveWeb(a);
    },
  });
  let tunnelPort: number;
  try {
    ({ port: tunnelPort } = await hub.listen());
  } catch (err) {
    await database.close();
    throw listenError(err, 'GATEPOOL_TUNNEL_PORT');
  }
  registry.tunnelAddress = `${config.tunnelHostname}:${tunnelPort}`;
  try {
    await app.listen({ host: config.host, port: config.port });
  } catch (err) {
    await hub.close();
    await database.close();
    throw listenError(err, 'GATEPOOL_PORT');
  }
  const stopLocalAdmin = startLocalAdmin(database, config, log, () => ctx.credentials.clear());
  const lost = new LostConnectionSweeper(database.db, audit.serverId, log, (n) =>
    countLostConnections(metrics.registry, n),
  );
  // Connections a crash left open are recorded once this server is the server of its database:
  // now when it holds the data directory, else when it takes the single-node lock.
  const nodeWatch =
    config.databaseUrl && database.driver === 'postgres'
      ? watchSingleNode(
          config.databaseUrl,
          (message) => log.warn(message),
          (message) => log.info(message),
          undefined,
          { serverId: audit.serverId, onHeld: () => lost.run() },
        )
      : undefined;
  if (!nodeWatch) lost.run();
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const shownHost = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;
  const url = `http://${shownHost.includes(':') ? `[${shownHost}]` : shownHost}:${port}`;
  let closing: Promise<void> | undefined;
  return {
    app,
    ctx,
    url,
    tunnelPort,
    rootKeyGenerated,
    close() {
      // app.close() stops accepting, lets in-flight requests finish, then the DB goes.
      closing ??= (async () => {
        pools.close();
        await hub.close();
        await app.close();
        await stopLocalAdmin();
        // Connection events recorded off the request path are written before the database goes.
        await audit.drain();
        await lost.close();
        await nodeWatch?.close();
        await database.close();
      })();
      return closing;
    },
  };
}

/** True while no user exists: the operator still has to create the first admin. */
export async function needsBootstrap(ctx: AppContext): Promise<boolean> {
  const [row] = await ctx.db.select({ n: count() }).from(users);
  return Number(row?.n ?? 0) === 0;
}
