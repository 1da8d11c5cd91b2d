import { getTableName } from 'drizzle-orm';
import type { Database } from '../db/client.js';
import { gatewayCas, platformSettings } from '../db/schema.js';
import { SERVER_CA_KEY } from '../gateways/ca-store.js';

/**
 * Whether the database holds secrets sealed with a root key (the tunnel server CA's key, any
 * org's gateway CA). Platform-wide, not per org: one root key seals every org's secrets. Runs
 * before migrations, on a database that may have none of these tables yet (then: no secrets).
 */
export async function holdsSealedSecrets(database: Database): Promise<boolean> {
  const settings = getTableName(platformSettings);
  const cas = getTableName(gatewayCas);
  return database.withScriptTransaction(async (r) => {
    const [t] = await r.query<{ settings: string | null; cas: string | null }>(
      `SELECT to_regclass($1)::text AS settings, to_regclass($2)::text AS cas`,
      [settings, cas],
    );
    if (!t?.settings || !t.cas) return false;
    const [row] = await r.query<{ n: number }>(
      `SELECT (SELECT count(*) FROM ${settings} WHERE key = $1)::int +
              (SELECT count(*) FROM ${cas})::int AS n`,
      [SERVER_CA_KEY],
    );
    return (row?.n ?? 0) > 0;
  });
}
