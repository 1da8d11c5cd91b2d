/** Migrations: recorded once, idempotent, and safe when two platforms start on one database. */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { openDatabase } from '../../src/server/db/client.js';
import { migrate, migrationFiles } from '../../src/server/db/migrate.js';
import { readBackup, snapshotBeforeMigrations } from '../../src/server/db/backup.js';
import { openEmbeddedDatabase } from '../../src/server/db/embedded.js';
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
  it('snapshots a database with data before migrating it, restorable; never a fresh one', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'gatepool-premigrate-'));
    try {
      const database = await openEmbeddedDatabase(dataDir);
      const log = { info: () => undefined, warn: () => undefined };
      try {
        // Fresh: nothing to protect.
        expect(await snapshotBeforeMigrations(database, dataDir, undefined, 3, log)).toBe(
          undefined,
        );
        // An older platform's database: only the first migration applied, and a row in it.
        const [first] = migrationFiles();
        await database.withScriptTransaction(async (r) => {
          await r.exec(
            readFileSync(
              new URL(`../../src/server/db/migrations/${first}`, import.meta.url),
              'utf8',
            ),
          );
          await r.exec(
            `CREATE TABLE schema_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`,
          );
          await r.query('INSERT INTO schema_migrations (name) VALUES ($1)', [first]);
        });
        const path = await snapshotBeforeMigrations(database, dataDir, Buffer.from('k'), 3, log);
        expect(path).toMatch(/backups\/pre-migrate-.*\.tar\.gz$/);
        expect(statSync(path!).mode & 0o777).toBe(0o600);
        const backup = readBackup(readFileSync(path!), path!);
        expect(backup.manifest).toMatchObject({ migrations: [first], rootKeyIncluded: true });
        expect(backup.rootKey?.toString()).toBe('k');
        expect((await migrate(database)).applied).toEqual(migrationFiles().slice(1));
        // The snapshot opens as the database it was: one migration recorded.
        const copy = await openDatabase({ loadDataDir: new Blob([new Uint8Array(backup.dump)]) });
        try {
          const rows = await copy.withScriptTransaction((r) =>
            r.query<{ name: string }>('SELECT name FROM schema_migrations'),
          );
          expect(rows.map((x) => x.name)).toEqual([first]);
        } finally {
          await copy.close();
        }
      } finally {
        await database.close();
      }
      expect(existsSync(join(dataDir, 'gatepool.sock'))).toBe(false);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
    // initdb of a new embedded database and a snapshot load: seconds each on a busy host.
  }, 120_000);

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
