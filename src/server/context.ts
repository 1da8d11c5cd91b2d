import type { FastifyBaseLogger } from 'fastify';
import type { AuditLog } from './audit/service.js';
import type { RateLimiter } from './auth/rate-limit.js';
import type { Config } from './config.js';
import type { SecretBox } from './crypto/envelope.js';
import type { PlatformMetrics } from './gateways/metrics.js';
import type { GatewayRegistry } from './gateways/registry.js';
import type { PoolService } from './pools/service.js';
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
  /** Gateways: live tunnels (hub), certificate authorities, health views. */
  gateways: GatewayRegistry;
  metrics: PlatformMetrics;
  /** Gateway pools: cached membership, selection, failover. */
  pools: PoolService;
  limits: {
    loginPerIp: RateLimiter;
    loginPerAccount: RateLimiter;
    /** Gateway enrollments per client IP (GATEPOOL_ENROLL_RATE_LIMIT a minute). */
    enrollPerIp: RateLimiter;
  };
}
