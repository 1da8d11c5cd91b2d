import type { FastifyBaseLogger } from 'fastify';
import type { AuditLog } from './audit/service.js';
import type { RateLimiter } from './auth/rate-limit.js';
import type { Config } from './config.js';
import type { ConsumerRegistry } from './consumers/registry.js';
import type { SecretBox } from './crypto/envelope.js';
import type { PlatformMetrics } from './gateways/metrics.js';
import type { GatewayDirectory } from './gateways/directory.js';
import type { PoolRuntime } from './pools/runtime.js';
import type { Database, Db } from './db/client.js';
import type { LicenseService } from './license/service.js';

/** Long-lived services shared by every route; built once in server.ts. */
export interface AppContext {
  config: Config;
  database: Database;
  db: Db;
  box: SecretBox;
  audit: AuditLog;
  licenses: LicenseService;
  log: FastifyBaseLogger;
  /** The live directory of gateways: tunnels (hub), certificate authorities, health views. */
  directory: GatewayDirectory;
  metrics: PlatformMetrics;
  /** Gateway pools at run time: cached membership, selection, failover (not their CRUD). */
  poolRuntime: PoolRuntime;
  /** Every consumer kind of gateways and pools (implements ConsumerLookup for the lower layers). */
  consumers: ConsumerRegistry;
  limits: {
    loginPerIp: RateLimiter;
    loginPerAccount: RateLimiter;
    /** Gateway enrollments per client IP (GATEPOOL_ENROLL_RATE_LIMIT a minute). */
    enrollPerIp: RateLimiter;
  };
}
