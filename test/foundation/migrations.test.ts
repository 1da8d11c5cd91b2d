/** Migrations: recorded once, idempotent, and safe when two platforms start on one database. */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { openDatabase } from '../../src/server/db/client.js';
import { migrate, migrationFiles } from '../../src/server/db/migrate.js';
import { createTestDatabase, PG_ENV } from '../helpers/postgres.js';
import {
  api,
  bootstrap,
  hasPostgres,
  openSnapshotDatabase,
  startTestPlatform,
  type TestPlatform,
} from '../helpers/platform.js';

async function migrationRows(url: string): Promise<{ name: string }[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (
      await client.query<{ name: string }>('SELECT name FROM schema_migrations ORDER BY name')
    ).rows;
  } finally {
    await client.end();
  }
}

describe('migrations on pglite', () => {
  it('the snapshot has every migration; running again applies nothing', async () => {
    const database = await openSnapshotDatabase();
    try {
      expect(await migrate(database)).toEqual({
        applied: [],
        alreadyApplied: migrationFiles().length,
      });
    } finally {
      await database.close();
    }
  });
});

describe.runIf(hasPostgres())('migrations on postgres', () => {
  const drops: (() => Promise<void>)[] = [];
  const platforms: TestPlatform[] = [];
  afterAll(async () => {
    await Promise.all(platforms.map((p) => p.close()));
    for (const d of drops) await d();
  });

  it('two migrate() calls at once apply each migration exactly once', async () => {
    const db = await createTestDatabase(process.env[PG_ENV]!, inject('pgRunId')!, null);
    drops.push(db.drop);
    const a = await openDatabase({ url: db.url, poolSize: 2 });
    const b = await openDatabase({ url: db.url, poolSize: 2 });
    try {
      const [ra, rb] = await Promise.all([migrate(a), migrate(b)]);
      const files = migrationFiles();
      expect([...ra.applied, ...rb.applied].sort()).toEqual(files);
      expect([ra.applied.length, rb.applied.length].sort()).toEqual([0, files.length]);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('two platforms starting at once on one fresh database both start and migrate once', async () => {
    const db = await createTestDatabase(process.env[PG_ENV]!, inject('pgRunId')!, null);
    drops.push(db.drop);
    // Nodes of one platform share the root key (secrets in the database are sealed with it).
    const shared = { GATEPOOL_ENCRYPTION_KEY: randomBytes(32).toString('hex') };
    const started = await Promise.allSettled([
      startTestPlatform('postgres', { databaseUrl: db.url, configOverrides: shared }),
      startTestPlatform('postgres', { databaseUrl: db.url, configOverrides: shared }),
    ]);
    for (const s of started) if (s.status === 'fulfilled') platforms.push(s.value);
    expect(started.map((s) => (s.status === 'rejected' ? String(s.reason) : 'ok'))).toEqual([
      'ok',
      'ok',
    ]);
    const rows = await migrationRows(db.url);
    expect(rows.map((r) => r.name)).toEqual(migrationFiles());

    // Both serve the same data.
    const [one, two] = platforms;
    const admin = await bootstrap(one!);
    expect((await api(two!).get('/api/v1/bootstrap')).body).toEqual({ bootstrapped: true });
    expect((await api(two!, admin.token).get('/api/v1/me')).status).toBe(200);
  });
});
