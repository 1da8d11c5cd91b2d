/**
 * Runs once per `vitest run`, in the main process, before any test file:
 *
 * - PGlite: migrates an in-memory database once and dumps its data directory to a tarball,
 *   so every test platform starts from it (`loadDataDir`) instead of paying initdb.
 * - Real processes: bundles the CLI and agent entry points once (entry.ts), so the servers,
 *   CLI commands and gateways tests spawn start without tsx's per-module cost.
 * - PostgreSQL (when GATEPOOL_TEST_DATABASE_URL is set): checks the server is reachable,
 *   builds a migrated template database, and hands test files a run id; every test platform
 *   then gets its own fresh database `gatepool_test_<run>_<n>`, dropped on close, and the
 *   teardown drops whatever this run left behind (and the template).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { BUNDLE_ENV, buildEntries } from './entry.js';
import { openDatabase } from '../../src/server/db/client.js';
import { migrate } from '../../src/server/db/migrate.js';
import {
  adminUrl,
  databaseUrlFor,
  dropDatabase,
  PG_ENV,
  quoteIdent,
  runPrefix,
  withAdmin,
} from './postgres.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Path of a PGlite data-dir tarball with every migration applied. */
    pgliteSnapshot: string;
    /** Set when GATEPOOL_TEST_DATABASE_URL is: the id that prefixes this run's databases. */
    pgRunId: string | null;
    /** A migrated database to clone with CREATE DATABASE … TEMPLATE (PostgreSQL only). */
    pgTemplate: string | null;
  }
}

async function pgliteSnapshot(dir: string): Promise<string> {
  const database = await openDatabase({});
  try {
    await migrate(database);
    // openDatabase hides the PGlite client: reach the one drizzle wraps.
    const client = (
      database.db as unknown as { $client: { dumpDataDir(c: 'none'): Promise<Blob> } }
    ).$client;
    // Uncompressed loads faster than gzip, and it is only a temp file.
    const blob = await client.dumpDataDir('none');
    const file = join(dir, 'pglite-migrated.tar');
    writeFileSync(file, Buffer.from(await blob.arrayBuffer()));
    return file;
  } finally {
    await database.close();
  }
}

async function checkPostgres(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl(url), connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
    await client.query('select 1');
  } catch (err) {
    throw new Error(
      `${PG_ENV}=${url} is set but PostgreSQL is not reachable there (${(err as Error).message}). ` +
        `Start PostgreSQL or unset ${PG_ENV} to test on PGlite only.`,
    );
  } finally {
    await client.end().catch(() => undefined);
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const dir = mkdtempSync(join(tmpdir(), 'gatepool-test-'));
  const pgUrl = process.env[PG_ENV];
  let runId: string | null = null;
  let template: string | null = null;
  if (pgUrl) {
    await checkPostgres(pgUrl);
    runId = randomBytes(4).toString('hex');
    template = `${runPrefix(runId)}template`;
    const name = template;
    await withAdmin(pgUrl, (c) => c.query(`CREATE DATABASE ${quoteIdent(name)}`));
    const database = await openDatabase({ url: databaseUrlFor(pgUrl, name), poolSize: 1 });
    try {
      await migrate(database);
    } finally {
      await database.close();
    }
  }
  const snapshot = await pgliteSnapshot(dir);
  let entries = await buildEntries();
  process.env[BUNDLE_ENV] = entries.dir;
  // Watch mode: a rerun gets a bundle of the sources as they are now.
  project.onTestsRerun(async () => {
    const previous = entries;
    entries = await buildEntries();
    process.env[BUNDLE_ENV] = entries.dir;
    previous.remove();
  });
  project.provide('pgliteSnapshot', snapshot);
  project.provide('pgRunId', runId);
  project.provide('pgTemplate', template);

  return async () => {
    rmSync(dir, { recursive: true, force: true });
    entries.remove();
    if (pgUrl && runId) {
      const prefix = runPrefix(runId);
      await withAdmin(pgUrl, async (c) => {
        const { rows } = await c.query<{ datname: string }>(
          `SELECT datname FROM pg_database WHERE starts_with(datname, $1)`,
          [prefix],
        );
        for (const { datname } of rows) await dropDatabase(c, datname);
      }).catch((err: Error) =>
        console.warn(`gatepool tests: could not drop test databases: ${err.message}`),
      );
    }
  };
}
