import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Database } from './client.js';

const MIGRATIONS_DIR = fileURLToPath(new URL('./migrations/', import.meta.url));
// Arbitrary constant: every gatepool process agrees on it, nothing else uses it.
const MIGRATION_LOCK_KEY = 4_711_2026;

export interface MigrationResult {
  applied: string[];
  alreadyApplied: number;
}

export function migrationFiles(): string[] {
  return readdirSync(MIGRATIONS_DIR)
    .filter((f) => /^\d{4}_[a-z0-9_]+\.sql$/.test(f))
    .sort();
}

/**
 * Applies pending migrations in one transaction under an advisory lock, so two platform
 * processes starting together on one database apply each migration exactly once: the
 * second waits for the lock, then finds nothing left to do.
 */
export async function migrate(database: Database): Promise<MigrationResult> {
  return database.withScriptTransaction(async (r) => {
    await r.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY]);
    await r.exec(
      `CREATE TABLE IF NOT EXISTS schema_migrations (
         name text PRIMARY KEY,
         applied_at timestamptz NOT NULL DEFAULT now()
       )`,
    );
    const done = new Set(
      (await r.query<{ name: string }>('SELECT name FROM schema_migrations')).map((x) => x.name),
    );
    const applied: string[] = [];
    for (const file of migrationFiles()) {
      if (done.has(file)) continue;
      await r.exec(readFileSync(MIGRATIONS_DIR + file, 'utf8'));
      await r.query('INSERT INTO schema_migrations (name) VALUES ($1)', [file]);
      applied.push(file);
    }
    return { applied, alreadyApplied: done.size };
  });
}

/**
 * Migrations not yet applied, and how many were (0 = a fresh database, nothing to protect).
 * Read-only: the platform decides from it whether to snapshot before migrating.
 */
export async function pendingMigrations(
  database: Database,
): Promise<{ pending: string[]; applied: number }> {
  return database.withScriptTransaction(async (r) => {
    const [exists] = await r.query<{ t: string | null }>(
      `SELECT to_regclass('schema_migrations')::text AS t`,
    );
    const done = exists?.t
      ? new Set(
          (await r.query<{ name: string }>('SELECT name FROM schema_migrations')).map(
            (x) => x.name,
          ),
        )
      : new Set<string>();
    return { pending: migrationFiles().filter((f) => !done.has(f)), applied: done.size };
  });
}
