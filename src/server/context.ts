import type { FastifyBaseLogger } from 'fastify';
import type { AuditLog } from './audit/service.js';
import type { CredentialCache } from './auth/credential-cache.js';
import type { RateLimiter } from './auth/rate-limit.js';
import type { Config } from './config.js';
import type { ConsumerRegistry } from './consumers/registry.js';
import type { SecretBox } from './crypto/envelope.js';
import type { PlatformMetrics } from './gateways/metrics.js';
import type { GatewayDirectory } from './gateways/directory.js';
import type { PoolRuntime } from './pools/runtime.js';
import type { Database, Db } from './db/client.js';
import type { LicenseService } from './license/service.js';

/**
 * What every feature may use: storage, secrets, audit, plans, logging, rate limits. Nothing of
 * the network layers: people, roles, orgs and licenses need none of them.
 */
export interface CoreContext {
  config: Config;
  database: Database;
  db: Db;
  box: SecretBox;
  audit: AuditLog;
  licenses: LicenseService;
  log: FastifyBaseLogger;
  /** Resolved callers by credential; cleared by every change made through this process. */
  credentials: CredentialCache;
  limits: {
    /** Password logins per client IP (GATEPOOL_LOGIN_RATE_LIMIT a minute). */
    loginPerIp: RateLimiter;
    /** Password logins per (client IP, e-mail), never per e-mail alone: no lock-out by anyone. */
    loginPerAccount: RateLimiter;
    /** Gateway enrollments per client IP (GATEPOOL_ENROLL_RATE_LIMIT a minute). */
    enrollPerIp: RateLimiter;
  };
}

/** The gateway, pool and consumer layers at run time, for features that reach private networks. */
export interface NetworkContext {
  /** The live directory of gateways: tunnels (hub), certificate authorities, health views. */
  directory: GatewayDirectory;
  metrics: PlatformMetrics;
  /** Gateway pools at run time: cached membership, selection, failover (not their CRUD). */
  poolRuntime: PoolRuntime;
  /** Every consumer kind of gateways and pools (implements ConsumerLookup for the lower layers). */
  consumers: ConsumerRegistry;
}

/**
 * Long-lived services, built once in server.ts and handed to route modules only: a route
 * module passes each service the few dependencies it uses, so nothing below the routes
 * (services, runtime, http/, auth/) imports this file.
 */
export interface AppContext extends CoreContext, NetworkContext {}
