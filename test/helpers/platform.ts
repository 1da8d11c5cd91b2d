/**
 * Start the real platform in-process for integration tests, on PGlite (from the migrated
 * snapshot made by global-setup) or on a fresh PostgreSQL database, and drive it over HTTP.
 *
 *   describe.each(DRIVERS)('users on %s', (driver) => {
 *     let tp: TestPlatform;
 *     beforeAll(async () => void (tp = await startTestPlatform(driver)));
 *     afterAll(() => tp.close());
 *     ...
 *   });
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'drizzle-orm';
import { exportPKCS8, exportSPKI, generateKeyPair } from 'jose';
import pino from 'pino';
import { inject } from 'vitest';
import { loadConfig } from '../../src/server/config.js';
import { openDatabase, type Database, type Db } from '../../src/server/db/client.js';
import { issueLicense } from '../../src/server/license/license.js';
import type { Plan } from '../../src/server/license/plans.js';
import { createOrganization } from '../../src/server/orgs/service.js';
import { startPlatform, type Platform } from '../../src/server/server.js';
import { createTestDatabase, PG_ENV } from './postgres.js';

export type Driver = 'pglite' | 'postgres';

/** Every database test runs on each of these: PGlite always, PostgreSQL when configured. */
export const DRIVERS: Driver[] = process.env[PG_ENV] ? ['pglite', 'postgres'] : ['pglite'];

export const hasPostgres = () => !!process.env[PG_ENV];

// ---------------------------------------------------------------------------------------
// License signing key: one pair per test file; platforms trust its public key.

let keyPair: Promise<{ privatePem: string; publicPem: string }> | undefined;

export function licenseKeys(): Promise<{ privatePem: string; publicPem: string }> {
  keyPair ??= (async () => {
    const { privateKey, publicKey } = await generateKeyPair('EdDSA', {
      crv: 'Ed25519',
      extractable: true,
    });
    return { privatePem: await exportPKCS8(privateKey), publicPem: await exportSPKI(publicKey) };
  })();
  return keyPair;
}

/** A license signed with the key every test platform trusts. `days` < 0 gives an expired one. */
export async function issueTestLicense(opts: {
  plan: Plan;
  org: string;
  days?: number;
  now?: Date;
}): Promise<string> {
  const { privatePem } = await licenseKeys();
  const now =
    opts.now ??
    (opts.days !== undefined && opts.days < 0
      ? new Date(Date.now() + opts.days * 2 * 86400_000)
      : undefined);
  return issueLicense({
    privateKeyPem: privatePem,
    plan: opts.plan,
    org: opts.org,
    days: opts.days === undefined ? undefined : Math.abs(opts.days),
    now,
  });
}

// ---------------------------------------------------------------------------------------
// Platforms

export interface TestPlatformOptions {
  /** Environment-style settings layered over the test defaults (e.g. GATEPOOL_SESSION_TTL_SECONDS). */
  configOverrides?: Record<string, string | undefined>;
  /** Alias of configOverrides. */
  env?: Record<string, string | undefined>;
  /**
   * `migrated` (default) starts from a migrated database; `empty` from a blank one;
   * `configured` (PGlite) lets the platform open the database of its GATEPOOL_DATA_DIR.
   */
  database?: 'migrated' | 'empty' | 'configured';
  /** PostgreSQL only: use this existing database (it is not dropped on close). */
  databaseUrl?: string;
}

export interface TestPlatform {
  driver: Driver;
  /** Base URL, e.g. http://127.0.0.1:40123 */
  url: string;
  platform: Platform;
  /** Direct database access for arranging state (expiring sessions, reading rows). */
  db: Db;
  dataDir: string;
  /** PostgreSQL only: the URL of this platform's database. */
  databaseUrl?: string;
  close(): Promise<void>;
}

let snapshot: Blob | undefined;

/**
 * PGlite databases of test platforms that closed cleanly, kept for the next one in this worker:
 * loading the snapshot costs about a second of PostgreSQL start-up in WebAssembly, and the suite
 * opens dozens. One is emptied when taken (below), so it holds what a fresh copy of the
 * snapshot holds: the migrations' bookkeeping and nothing else. Only TestPlatform.close gives
 * one back; a test that closes a database itself (an outage) closes it for real.
 */
const spares: Database[] = [];
const MAX_SPARES = 4;
let emptyAll: string | undefined;

async function takeSpare(): Promise<Database | undefined> {
  for (let database = spares.pop(); database; database = spares.pop()) {
    try {
      await database.withScriptTransaction(async (r) => {
        if (!emptyAll) {
          const [row] = await r.query<{ tables: string }>(
            `SELECT string_agg(format('%I', tablename), ', ') AS tables FROM pg_tables
             WHERE schemaname = 'public' AND tablename <> 'schema_migrations'`,
          );
          emptyAll = `TRUNCATE ${row!.tables} RESTART IDENTITY CASCADE`;
        }
        await r.exec(emptyAll);
      });
      // Session state a platform may have left (settings, prepared statements); not in a transaction.
      await database.db.execute(sql.raw('DISCARD ALL'));
      return database;
    } catch {
      await database.close().catch(() => undefined);
    }
  }
  return undefined;
}

/** A PGlite database as the migrated snapshot has it (no initdb, no migrations to run). */
export async function openSnapshotDatabase(): Promise<Database> {
  const spare = await takeSpare();
  if (spare) return spare;
  snapshot ??= new Blob([readFileSync(inject('pgliteSnapshot'))]);
  return openDatabase({ loadDataDir: snapshot });
}

/**
 * `database` for a test platform: its close() gives it back to the spares once `reusable()`
 * says the platform is closing cleanly, and closes it for real otherwise. Closing twice is
 * closing once.
 */
function returnable(database: Database, reusable: () => boolean): Database {
  let closed: Promise<void> | undefined;
  return {
    ...database,
    close() {
      closed ??=
        reusable() && spares.length < MAX_SPARES
          ? Promise.resolve(void spares.push(database))
          : database.close();
      return closed;
    },
  };
}

export async function startTestPlatform(
  driver: Driver,
  opts: TestPlatformOptions = {},
): Promise<TestPlatform> {
  const dataDir = mkdtempSync(join(tmpdir(), 'gatepool-platform-'));
  const cleanups: (() => Promise<void> | void)[] = [
    () => rmSync(dataDir, { recursive: true, force: true }),
  ];
  const cleanup = async () => {
    for (const fn of cleanups.reverse()) await fn();
  };
  /** Set by close(): the platform stops cleanly, so its PGlite database may serve another. */
  let cleanClose = false;
  try {
    const env: Record<string, string | undefined> = {
      GATEPOOL_HOST: '127.0.0.1',
      GATEPOOL_PORT: '0',
      GATEPOOL_TUNNEL_PORT: '0',
      GATEPOOL_TUNNEL_HOSTNAME: '127.0.0.1',
      GATEPOOL_DATA_DIR: dataDir,
      GATEPOOL_LOG_LEVEL: 'silent',
      GATEPOOL_LICENSE_PUBLIC_KEY: (await licenseKeys()).publicPem,
      // Tests stand in for a proxy on loopback to give requests distinct client IPs.
      GATEPOOL_TRUST_PROXY: 'loopback',
    };
    let database: Database | undefined;
    let databaseUrl: string | undefined;
    if (driver === 'postgres') {
      const server = process.env[PG_ENV];
      const runId = inject('pgRunId');
      if (!server || !runId) throw new Error(`the postgres driver needs ${PG_ENV}`);
      if (opts.databaseUrl) {
        databaseUrl = opts.databaseUrl;
      } else {
        const created = await createTestDatabase(
          server,
          runId,
          opts.database === 'empty' ? null : inject('pgTemplate'),
        );
        cleanups.push(created.drop);
        databaseUrl = created.url;
      }
      env.DATABASE_URL = databaseUrl;
    } else {
      if (opts.database === 'empty') database = await openDatabase({});
      else if (opts.database !== 'configured')
        database = returnable(await openSnapshotDatabase(), () => cleanClose);
    }
    if (database) {
      const db = database;
      // Closed by the platform; this covers a start that fails before it takes the handle.
      cleanups.push(() => db.close().catch(() => undefined));
    }
    const config = loadConfig({ ...env, ...opts.env, ...opts.configOverrides });
    const platform = await startPlatform(config, { logger: pino({ level: 'silent' }), database });
    let closing: Promise<void> | undefined;
    return {
      driver,
      url: platform.url,
      platform,
      db: platform.ctx.db,
      dataDir,
      databaseUrl,
      close() {
        closing ??= (async () => {
          try {
            cleanClose = true;
            await platform.close();
          } finally {
            await cleanup();
          }
        })();
        return closing;
      },
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

// ---------------------------------------------------------------------------------------
// HTTP

// Response bodies are JSON of many shapes; tests read them freely and assert what matters.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

export interface ApiResponse {
  status: number;
  body: Json;
  /** Lower-cased header names. */
  headers: Record<string, string>;
  setCookie: string[];
  text: string;
}

export interface RequestOptions {
  headers?: Record<string, string>;
  /** Sent as-is instead of JSON-encoding `body` (malformed JSON, huge payloads). */
  raw?: string;
  /** Bound on the whole request; default 10 s. */
  timeoutMs?: number;
}

export const TEST_USER_AGENT = 'gatepool-tests/1.0';

export async function request(
  method: string,
  url: string,
  token: string | undefined,
  body?: unknown,
  opts: RequestOptions = {},
): Promise<ApiResponse> {
  const headers: Record<string, string> = { 'user-agent': TEST_USER_AGENT, ...opts.headers };
  if (token) headers.authorization = `Bearer ${token}`;
  let payload: string | undefined = opts.raw;
  if (payload === undefined && body !== undefined) payload = JSON.stringify(body);
  if (
    payload !== undefined &&
    !Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')
  ) {
    headers['content-type'] = 'application/json';
  }
  const res = await fetch(url, {
    method,
    headers,
    body: payload,
    signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
  });
  const text = await res.text();
  let parsed: Json = undefined;
  if (text && (res.headers.get('content-type') ?? '').includes('json')) parsed = JSON.parse(text);
  return {
    status: res.status,
    body: parsed,
    headers: Object.fromEntries([...res.headers.entries()]),
    setCookie: res.headers.getSetCookie(),
    text,
  };
}

export interface ApiClient {
  token: string | undefined;
  get(path: string, opts?: RequestOptions): Promise<ApiResponse>;
  head(path: string, opts?: RequestOptions): Promise<ApiResponse>;
  delete(path: string, opts?: RequestOptions): Promise<ApiResponse>;
  post(path: string, body?: unknown, opts?: RequestOptions): Promise<ApiResponse>;
  put(path: string, body?: unknown, opts?: RequestOptions): Promise<ApiResponse>;
  patch(path: string, body?: unknown, opts?: RequestOptions): Promise<ApiResponse>;
  send(method: string, path: string, body?: unknown, opts?: RequestOptions): Promise<ApiResponse>;
}

/** A small client over fetch: `api(tp.url, token).get('/api/v1/me')`. */
export function api(base: string | { url: string }, token?: string): ApiClient {
  const root = typeof base === 'string' ? base : base.url;
  const send = (method: string, path: string, body?: unknown, opts?: RequestOptions) =>
    request(method, root + path, token, body, opts);
  return {
    token,
    send,
    get: (p, o) => send('GET', p, undefined, o),
    head: (p, o) => send('HEAD', p, undefined, o),
    delete: (p, o) => send('DELETE', p, undefined, o),
    post: (p, b, o) => send('POST', p, b, o),
    put: (p, b, o) => send('PUT', p, b, o),
    patch: (p, b, o) => send('PATCH', p, b, o),
  };
}

// ---------------------------------------------------------------------------------------
// Accounts

export const TEST_PASSWORD = 'correct-horse-battery';
/**
 * What an inviting admin (or the operator) sets for a new account; its first sign-in must
 * replace it (with TEST_PASSWORD in the helpers) before anything else works.
 */
export const INITIAL_PASSWORD = 'admin-chosen-initial';
const uniq = () => randomBytes(5).toString('hex');

export interface Account {
  id: string;
  email: string;
  password: string;
  orgId: string;
  role: string;
  token: string;
  client: ApiClient;
}

/** Creates the first admin and org. */
export async function bootstrap(
  target: string | { url: string },
  input: { email?: string; password?: string; organizationName?: string } = {},
): Promise<Account> {
  const email = input.email ?? `admin-${uniq()}@example.com`;
  const password = input.password ?? TEST_PASSWORD;
  const res = await api(target).post('/api/v1/bootstrap', {
    email,
    password,
    organizationName: input.organizationName ?? 'Acme',
  });
  if (res.status !== 201) throw new Error(`bootstrap answered ${res.status}: ${res.text}`);
  const token = res.body.token as string;
  return {
    id: res.body.user.id,
    email,
    password,
    orgId: res.body.organization.id,
    role: 'admin',
    token,
    client: api(target, token),
  };
}

/**
 * Logs in over HTTP. Test logins are not attacks: the per-IP login budget of the loopback
 * address is reset afterwards so helper logins never trip the rate limit.
 */
export async function login(
  tp: TestPlatform,
  email: string,
  password: string,
  organizationId?: string,
): Promise<{ token: string; body: Json }> {
  const res = await api(tp).post('/api/v1/auth/login', {
    email,
    password,
    ...(organizationId ? { organizationId } : {}),
  });
  for (const ip of ['127.0.0.1', '::ffff:127.0.0.1', '::1'])
    tp.platform.ctx.limits.loginPerIp.reset(ip);
  if (res.status !== 200) throw new Error(`login answered ${res.status}: ${res.text}`);
  return { token: res.body.token as string, body: res.body };
}

/**
 * A new account's first sign-in, as its person does it: log in with the password someone else
 * chose (`initial`), then replace it with TEST_PASSWORD (the session stays, now unrestricted).
 */
export async function firstSignIn(
  tp: TestPlatform,
  email: string,
  initial: string,
  organizationId?: string,
): Promise<{ token: string; body: Json }> {
  const first = await login(tp, email, initial, organizationId);
  if (first.body.passwordChangeRequired !== true)
    throw new Error(`the first sign-in of ${email} did not require a password change`);
  const changed = await api(tp, first.token).post('/api/v1/auth/password', {
    currentPassword: initial,
    newPassword: TEST_PASSWORD,
  });
  for (const ip of ['127.0.0.1', '::ffff:127.0.0.1', '::1'])
    tp.platform.ctx.limits.loginPerIp.reset(ip);
  if (changed.status !== 200)
    throw new Error(`POST /api/v1/auth/password answered ${changed.status}: ${changed.text}`);
  return { token: first.token, body: { ...first.body, passwordChangeRequired: false } };
}

/**
 * Invites a new user with `role` into the admin's org (POST /api/v1/users) and signs them in
 * for the first time, password changed to TEST_PASSWORD.
 */
export async function addUser(tp: TestPlatform, admin: Account, role: string): Promise<Account> {
  const email = `${role}-${uniq()}@example.com`;
  const res = await admin.client.post('/api/v1/users', {
    email,
    password: INITIAL_PASSWORD,
    role,
  });
  if (res.status !== 201) throw new Error(`POST /api/v1/users answered ${res.status}: ${res.text}`);
  // A new account's first sign-in accepts its invitation (users/service.ts).
  const { token, body } = await firstSignIn(tp, email, INITIAL_PASSWORD, admin.orgId);
  return {
    id: body.user.id,
    email,
    password: TEST_PASSWORD,
    orgId: admin.orgId,
    role,
    token,
    client: api(tp, token),
  };
}

/** A machine identity with `role` in the admin's org, and an access token for it. */
export async function addIdentity(
  tp: TestPlatform,
  admin: Account,
  role: string,
  ttlSeconds?: number,
): Promise<{ id: string; name: string; tokenId: string; token: string; client: ApiClient }> {
  const name = `bot-${uniq()}`;
  const created = await admin.client.post('/api/v1/identities', { name, role });
  if (created.status !== 201)
    throw new Error(`POST /api/v1/identities answered ${created.status}: ${created.text}`);
  const tok = await admin.client.post(
    `/api/v1/identities/${created.body.id}/tokens`,
    ttlSeconds ? { ttlSeconds } : {},
  );
  if (tok.status !== 201) throw new Error(`POST tokens answered ${tok.status}: ${tok.text}`);
  return {
    id: created.body.id,
    name,
    tokenId: tok.body.id,
    token: tok.body.token,
    client: api(tp, tok.body.token),
  };
}

/** A second organization with its own (new) admin, made the way `gatepool admin create-org` does. */
export async function createSecondOrg(
  tp: TestPlatform,
  name = `Other ${uniq()}`,
): Promise<Account> {
  const email = `other-admin-${uniq()}@example.com`;
  const { orgId, userId } = await createOrganization(tp.platform.ctx.db, tp.platform.ctx.audit, {
    name,
    adminEmail: email,
    adminPassword: INITIAL_PASSWORD,
  });
  const { token } = await firstSignIn(tp, email, INITIAL_PASSWORD, orgId);
  return {
    id: userId,
    email,
    password: TEST_PASSWORD,
    orgId,
    role: 'admin',
    token,
    client: api(tp, token),
  };
}

/** Polls `fn` until it returns a truthy value; throws after `timeoutMs`. */
export async function waitFor<T>(
  fn: () => Promise<T> | T,
  timeoutMs = 5000,
  what = 'condition',
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
