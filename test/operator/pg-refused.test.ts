/**
 * The platform's PostgreSQL database refusing new connections, as a DBA's maintenance does it
 * without stopping the server (QA pass 3): closed to connections (`ALLOW_CONNECTIONS false`),
 * dropped, then recreated empty. A real `gatepool server` on a database of its own on the
 * shared test server (never stopped here). Every API answer meanwhile is a 503 a client can
 * act on — `database_unavailable` with Retry-After, or `database_not_ready` once the tables
 * are gone — never a 500; `/readyz` says not ready until the platform can serve again.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { bootstrap, waitFor, type Account } from '../helpers/platform.js';
import { createTestDatabase, PG_ENV, quoteIdent, withAdmin } from '../helpers/postgres.js';
import { startServer, type ServerProcess } from './processes.js';

const pgUrl = process.env[PG_ENV];

describe.skipIf(!pgUrl)("the platform's PostgreSQL database refusing connections", () => {
  let server: ServerProcess;
  let admin: Account;
  let db: { name: string; url: string; drop: () => Promise<void> };
  let dataDir: string;
  const sql = (text: string) => withAdmin(pgUrl!, (c) => c.query(text));

  beforeAll(async () => {
    db = await createTestDatabase(pgUrl!, inject('pgRunId') ?? 'refused', null);
    dataDir = await mkdtemp(join(tmpdir(), 'gatepool-refused-'));
    server = await startServer({ DATABASE_URL: db.url, GATEPOOL_DATA_DIR: dataDir });
    admin = await bootstrap(server.url);
  }, 120_000);
  afterAll(async () => {
    await server?.kill('SIGKILL');
    await sql(`ALTER DATABASE ${quoteIdent(db.name)} ALLOW_CONNECTIONS true`).catch(() => null);
    await db?.drop();
    await rm(dataDir, { recursive: true, force: true });
  });

  const terminate = () =>
    sql(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${db.name}' AND pid <> pg_backend_pid()`,
    );

  it('answers 503 database_unavailable, never 500, while closed to connections or dropped', async () => {
    const client = admin.client;
    expect((await client.get('/api/v1/access-targets')).status).toBe(200);

    await sql(`ALTER DATABASE ${quoteIdent(db.name)} ALLOW_CONNECTIONS false`);
    await terminate();
    for (const res of [
      await client.get('/api/v1/access-targets'),
      await client.post('/api/v1/identities', { name: 'during-maintenance', role: 'viewer' }),
      await server.api().post('/api/v1/auth/login', { email: 'x@example.com', password: 'x' }),
    ]) {
      expect(res.status, res.text).toBe(503);
      expect(res.body.error).toMatchObject({ code: 'database_unavailable' });
      expect(res.headers['retry-after']).toBe('2');
    }
    expect((await server.api().get('/readyz')).status).toBe(503);

    await sql(`ALTER DATABASE ${quoteIdent(db.name)} ALLOW_CONNECTIONS true`);
    await waitFor(
      async () => (await client.get('/api/v1/access-targets')).status === 200,
      10_000,
      'the API to serve again once connections are allowed',
    );

    await sql(`DROP DATABASE ${quoteIdent(db.name)} WITH (FORCE)`);
    const gone = await client.get('/api/v1/access-targets');
    expect(gone.status, gone.text).toBe(503);
    expect(gone.body.error).toMatchObject({ code: 'database_unavailable' });
    expect((await server.api().get('/readyz')).status).toBe(503);
    expect(server.output()).not.toMatch(/unhandled error/);
  });

  it('says the database lacks its tables once it is recreated empty, and is not ready', async () => {
    await sql(`CREATE DATABASE ${quoteIdent(db.name)}`);
    let res = await admin.client.get('/api/v1/access-targets');
    for (
      let i = 0;
      i < 50 && res.status === 503 && res.body.error?.code === 'database_unavailable';
      i++
    ) {
      await new Promise((r) => setTimeout(r, 100));
      res = await admin.client.get('/api/v1/access-targets');
    }
    // The session's token was in the old database: whatever asks first finds no tables.
    expect(res.status, res.text).toBe(503);
    expect(res.body.error).toMatchObject({ code: 'database_not_ready' });
    expect(res.body.error.message).toMatch(/no gatepool tables.*Restart the platform/);
    const ready = await server.api().get('/readyz');
    expect(ready.status).toBe(503);
    expect(ready.body.error.message).toMatch(/lacks \d+ of gatepool's migrations/);
    expect(server.output()).not.toMatch(/unhandled error/);
  });
});
