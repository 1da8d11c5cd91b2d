import { resolve } from 'node:path';
import { z } from 'zod';
import { DirectTargets, DirectTargetsError } from './consumers/direct-targets.js';

/**
 * Every setting the platform reads, validated once at start. A bad value stops the process
 * with one line per problem naming the variable, instead of failing later and obscurely.
 */
const port = z.coerce
  .number({ error: 'must be a number' })
  .int('must be a whole number')
  .min(0, 'must be between 0 and 65535')
  .max(65535, 'must be between 0 and 65535');
const perMinute = z.coerce
  .number({ error: 'must be a number' })
  .int('must be a whole number')
  .min(1, 'must be at least 1');
const ms = (min: number) =>
  z.coerce.number({ error: 'must be a number' }).int().min(min, `must be >= ${min}`);

const schema = z.object({
  GATEPOOL_HOST: z.string().min(1).default('0.0.0.0'),
  GATEPOOL_PORT: port.default(8080),
  GATEPOOL_TUNNEL_PORT: port.default(8443),
  GATEPOOL_TUNNEL_HOSTNAME: z.string().min(1).optional(),
  GATEPOOL_PUBLIC_URL: z.url('must be a URL such as https://gatepool.example.com').optional(),
  GATEPOOL_DATA_DIR: z.string().min(1).default('./data'),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must start with postgres:// or postgresql://')
    .optional(),
  GATEPOOL_ENCRYPTION_KEY: z
    .string()
    .regex(
      /^([0-9a-fA-F]{64}|[A-Za-z0-9+/]{43}=)$/,
      'must be 32 bytes as 64 hex characters or base64',
    )
    .optional(),
  GATEPOOL_LICENSE_PUBLIC_KEY: z.string().min(1).optional(),
  GATEPOOL_TRUST_PROXY: z
    .string()
    .regex(
      /^(true|false|[0-9a-fA-F.:/,\s]+|loopback|linklocal|uniquelocal)$/,
      'must be true, false, loopback, or a comma-separated list of proxy addresses/CIDRs',
    )
    .default('false'),
  GATEPOOL_METRICS_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  GATEPOOL_LOG_LEVEL: z
    .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
    .default('info'),
  GATEPOOL_SESSION_TTL_SECONDS: ms(60).default(12 * 3600),
  GATEPOOL_KEEPALIVE_MS: ms(50).default(250),
  GATEPOOL_DEAD_AFTER_MS: ms(200).default(1000),
  GATEPOOL_ENROLL_RATE_LIMIT: perMinute.default(30),
  GATEPOOL_LOGIN_RATE_LIMIT: perMinute.default(20),
  GATEPOOL_K8S_LOGIN_RATE_LIMIT: perMinute.default(600),
  GATEPOOL_DIRECT_TARGETS: z
    .string()
    .max(4096)
    // The matcher's own parser: a rule it would refuse is refused here, before anything starts.
    .superRefine((v, ctx) => {
      const problem = directTargetsProblem(v);
      if (problem)
        ctx.addIssue({
          code: 'custom',
          message: `${problem}: rules are host:port, *.suffix:port, IP:port or CIDR:port, comma-separated (port may be * or a-b), e.g. "10.0.0.0/8:6443,kube.internal:443"`,
        });
    })
    .default(''),
  GATEPOOL_ACCESS_PREDIAL: z
    .enum(['true', 'false'], { error: 'must be true or false' })
    .default('true'),
  GATEPOOL_BACKUP_INTERVAL: z
    .string()
    .regex(
      /^(0|off|\d+(s|m|h|d))$/,
      'must be a duration such as 30m, 6h or 1d, or 0/off to disable',
    )
    .default('24h'),
  GATEPOOL_BACKUP_KEEP: z.coerce
    .number({ error: 'must be a number' })
    .int('must be a whole number')
    .min(1, 'must be at least 1')
    .max(1000, 'must be at most 1000')
    .default(7),
});

export type Config = {
  host: string;
  port: number;
  tunnelPort: number;
  tunnelHostname: string;
  publicUrl?: string;
  dataDir: string;
  databaseUrl?: string;
  encryptionKey?: string;
  licensePublicKey?: string;
  logLevel: string;
  /** When set, GET /metrics needs `Authorization: Bearer <token>`. */
  metricsToken?: string;
  /** Which proxies' X-Forwarded-For to believe (client IP for rate limits and audit). */
  trustProxy: boolean | string;
  sessionTtlSeconds: number;
  keepaliveMs: number;
  deadAfterMs: number;
  /** Enrollments per client IP per minute (a fleet behind one NAT shares an IP). */
  enrollRateLimit: number;
  /** Password logins per client IP per minute. */
  loginRateLimit: number;
  /** Kubernetes logins per client IP per minute (a cluster's pods share few node addresses). */
  k8sLoginRateLimit: number;
  /**
   * Targets the platform itself may connect to without a gateway (e.g. a Kubernetes API with
   * "No gateway (direct)"), as the raw rule list; empty = none. Parsed by DirectTargets.
   */
  directTargets: string;
  /** Embedded database snapshots every this many ms into DATA_DIR/backups; 0 = off. */
  backupIntervalMs: number;
  /** How many scheduled snapshots to keep. */
  backupKeep: number;
  /**
   * Open `postgres` access targets ahead of clients while `gatepool connect` standbys wait
   * (access-targets/predial.ts).
   */
  accessPredial: boolean;
};

/** What is wrong with a GATEPOOL_DIRECT_TARGETS list, in the matcher's words; null if nothing. */
function directTargetsProblem(list: string): string | null {
  try {
    new DirectTargets(list);
    return null;
  } catch (err) {
    if (!(err instanceof DirectTargetsError)) throw err;
    return err.problem;
  }
}

const DURATION_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
function durationMs(v: string): number {
  if (v === '0' || v === 'off') return 0;
  const unit = v.slice(-1) as keyof typeof DURATION_MS;
  return Number(v.slice(0, -1)) * DURATION_MS[unit];
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

/** Settings whose value is a secret: an error about them must not print it (logs, journald). */
const SECRET_SETTINGS = new Set(['GATEPOOL_ENCRYPTION_KEY', 'GATEPOOL_METRICS_TOKEN']);

/**
 * A bad value as an error may show it: secrets only by their length (a trailing newline from a
 * secrets file is the usual mistake, and shows as a length), a URL without its password.
 */
function shown(name: string, value: string | undefined): string {
  if (value === undefined) return 'unset';
  if (SECRET_SETTINGS.has(name)) return `(secret, ${value.length} characters)`;
  if (name === 'DATABASE_URL')
    return JSON.stringify(value.replace(/(\/\/[^/:@]*:)[^@/]*@/, '$1***@'));
  return JSON.stringify(value);
}

/** Reads settings from an env-like map; empty strings count as unset. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const input = Object.fromEntries(
    Object.keys(schema.shape).map((k) => [k, env[k] === '' ? undefined : env[k]]),
  );
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map(
        (i) =>
          `${String(i.path[0])}=${shown(String(i.path[0]), input[String(i.path[0])])}: ${i.message}`,
      ),
    );
  }
  const c = parsed.data;
  if (c.GATEPOOL_DEAD_AFTER_MS <= c.GATEPOOL_KEEPALIVE_MS) {
    throw new ConfigError([
      `GATEPOOL_DEAD_AFTER_MS (${c.GATEPOOL_DEAD_AFTER_MS}) must be greater than GATEPOOL_KEEPALIVE_MS (${c.GATEPOOL_KEEPALIVE_MS})`,
    ]);
  }
  // Both listen on GATEPOOL_HOST, so the second listen would fail only after the data directory,
  // database and root key were created, blaming "a port in use". Port 0 picks a free port each.
  if (c.GATEPOOL_PORT !== 0 && c.GATEPOOL_PORT === c.GATEPOOL_TUNNEL_PORT) {
    throw new ConfigError([
      `GATEPOOL_PORT and GATEPOOL_TUNNEL_PORT must differ (both ${c.GATEPOOL_PORT})`,
    ]);
  }
  return {
    host: c.GATEPOOL_HOST,
    port: c.GATEPOOL_PORT,
    tunnelPort: c.GATEPOOL_TUNNEL_PORT,
    // The name people reach the platform by is the best guess at the one gateways reach it by;
    // `localhost` only serves gateways on this host (the start-up output says so).
    tunnelHostname:
      c.GATEPOOL_TUNNEL_HOSTNAME ??
      (c.GATEPOOL_PUBLIC_URL
        ? new URL(c.GATEPOOL_PUBLIC_URL).hostname.replace(/^\[|\]$/g, '')
        : 'localhost'),
    publicUrl: c.GATEPOOL_PUBLIC_URL,
    dataDir: resolve(c.GATEPOOL_DATA_DIR),
    databaseUrl: c.DATABASE_URL,
    encryptionKey: c.GATEPOOL_ENCRYPTION_KEY,
    licensePublicKey: c.GATEPOOL_LICENSE_PUBLIC_KEY,
    logLevel: c.GATEPOOL_LOG_LEVEL,
    metricsToken: c.GATEPOOL_METRICS_TOKEN,
    trustProxy:
      c.GATEPOOL_TRUST_PROXY === 'true'
        ? true
        : c.GATEPOOL_TRUST_PROXY === 'false'
          ? false
          : c.GATEPOOL_TRUST_PROXY,
    sessionTtlSeconds: c.GATEPOOL_SESSION_TTL_SECONDS,
    keepaliveMs: c.GATEPOOL_KEEPALIVE_MS,
    deadAfterMs: c.GATEPOOL_DEAD_AFTER_MS,
    enrollRateLimit: c.GATEPOOL_ENROLL_RATE_LIMIT,
    loginRateLimit: c.GATEPOOL_LOGIN_RATE_LIMIT,
    k8sLoginRateLimit: c.GATEPOOL_K8S_LOGIN_RATE_LIMIT,
    directTargets: c.GATEPOOL_DIRECT_TARGETS,
    backupIntervalMs: durationMs(c.GATEPOOL_BACKUP_INTERVAL),
    backupKeep: c.GATEPOOL_BACKUP_KEEP,
    accessPredial: c.GATEPOOL_ACCESS_PREDIAL === 'true',
  };
}
