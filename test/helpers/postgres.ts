/** Fresh PostgreSQL databases for tests, made through an admin connection to the test server. */
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export const PG_ENV = 'GATEPOOL_TEST_DATABASE_URL';

export const runPrefix = (runId: string) => `gatepool_test_${runId}_`;

export const quoteIdent = (name: string) => `"${name.replaceAll('"', '""')}"`;

/** The same server and credentials, another database. */
export function databaseUrlFor(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

/** Admin work (CREATE/DROP DATABASE) runs connected to the `postgres` maintenance database. */
export function adminUrl(url: string): string {
  return databaseUrlFor(url, 'postgres');
}

export async function withAdmin<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl(url), connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

export async function dropDatabase(c: pg.Client, name: string): Promise<void> {
  // FORCE (PostgreSQL 13+) ends sessions a failed test may have left open.
  await c.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`);
}

/**
 * Creates `gatepool_test_<run>_<random>`: a copy of the migrated template, or an empty
 * database when `template` is null. Returns its URL and a drop function that never throws.
 */
export async function createTestDatabase(
  url: string,
  runId: string,
  template: string | null,
): Promise<{ name: string; url: string; drop: () => Promise<void> }> {
  const name = `${runPrefix(runId)}${randomBytes(6).toString('hex')}`;
  await withAdmin(url, async (c) => {
    const sql = `CREATE DATABASE ${quoteIdent(name)}${template ? ` TEMPLATE ${quoteIdent(template)}` : ''}`;
    // Two CREATE DATABASE … TEMPLATE at once can collide on the template ("being accessed by
    // other users"); retry briefly.
    for (let attempt = 0; ; attempt++) {
      try {
        await c.query(sql);
        return;
      } catch (err) {
        if (attempt >= 20 || !/being accessed by other users/.test((err as Error).message))
          throw err;
        await new Promise((r) => setTimeout(r, 50 + attempt * 25));
      }
    }
  });
  return {
    name,
    url: databaseUrlFor(url, name),
    drop: () =>
      withAdmin(url, (c) => dropDatabase(c, name)).catch((err: Error) =>
        console.warn(`gatepool tests: could not drop ${name}: ${err.message}`),
      ),
  };
}
