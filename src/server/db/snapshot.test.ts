/**
 * The embedded database's snapshot (what backups hold): a copy that loads with every committed
 * row, holding the database only while it reads the files (PGlite's own dump held it through
 * the compression too). How long the event loop stalls meanwhile depends on the machine's load
 * too much for a test: bench/backup.ts measures it (README, "Backups").
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from './client.js';
import { migrate } from './migrate.js';

describe('embedded database snapshot', () => {
  let dir: string;
  let database: Database;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gatepool-snapshot-'));
    database = await openDatabase({ dataDir: join(dir, 'pglite') });
    await migrate(database);
    await database.withScriptTransaction(async (r) => {
      await r.exec('CREATE TABLE fill (id serial PRIMARY KEY, b bytea NOT NULL)');
      // Incompressible rows: a database of a few MB, as a platform's grows to.
      for (let i = 0; i < 64; i++)
        await r.query('INSERT INTO fill (b) VALUES ($1)', [randomBytes(64 * 1024)]);
    });
  }, 120_000);
  afterAll(async () => {
    await database?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('loads with every row, and holds the database only while it reads the files', async () => {
    const marker = randomBytes(8).toString('hex');
    await database.withScriptTransaction((r) =>
      r.query('INSERT INTO fill (b) VALUES ($1)', [Buffer.from(marker)]),
    );
    // The first one pays for compiling its code paths and for the checkpoint of the rows above.
    await database.snapshot!();
    let snapshotDone = false;
    const snapshot = database.snapshot!().finally(() => (snapshotDone = true));
    // Past its checkpoint (a few ms), into the copy, which takes hundreds of ms.
    await new Promise((resolve) => setTimeout(resolve, 30));
    // Queued behind the copy: answered once the files are read, while they are compressed.
    const answeredDuringSnapshot = database
      .withScriptTransaction((r) => r.query('SELECT 1'))
      .then(() => !snapshotDone);
    const blob = await snapshot;
    expect(await answeredDuringSnapshot).toBe(true);

    const copy = await openDatabase({ loadDataDir: blob });
    try {
      const rows = await copy.withScriptTransaction((r) =>
        r.query<{ n: number; marked: number }>(
          `SELECT count(*)::int AS n, count(*) FILTER (WHERE b = $1)::int AS marked FROM fill`,
          [Buffer.from(marker)],
        ),
      );
      expect(rows[0]).toEqual({ n: 65, marked: 1 });
      const migrations = await copy.withScriptTransaction((r) =>
        r.query<{ n: number }>('SELECT count(*)::int AS n FROM schema_migrations'),
      );
      expect(migrations[0]!.n).toBeGreaterThan(0);
    } finally {
      await copy.close();
    }
  }, 120_000);
});
