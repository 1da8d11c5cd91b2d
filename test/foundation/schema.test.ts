/**
 * `src/server/db/schema.ts` (what queries are typed against) and the SQL migrations (what the
 * database really is) must agree (DESIGN §3). The tables are built a second time from drizzle's
 * schema, in a schema of their own in the same database, and the catalogs of both are compared:
 * tables, columns, types, nullability, defaults, identity and primary keys.
 */
import { is, SQL, sql } from 'drizzle-orm';
import { getTableConfig, PgDialect, PgTable, type PgColumn } from 'drizzle-orm/pg-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import type { Database } from '../../src/server/db/client.js';
import { openDatabase } from '../../src/server/db/client.js';
import * as schema from '../../src/server/db/schema.js';
import { DRIVERS, openSnapshotDatabase } from '../helpers/platform.js';
import { createTestDatabase, PG_ENV } from '../helpers/postgres.js';

const FROM_DRIZZLE = 'drizzle_schema_check';
/** Tables the migrations keep for themselves. */
const MIGRATIONS_ONLY = new Set(['schema_migrations']);

const dialect = new PgDialect();
const tables = Object.values(schema as Record<string, unknown>).filter((v): v is PgTable =>
  is(v, PgTable),
);

const ident = (s: string) => `"${s.replaceAll('"', '""')}"`;

function literal(value: unknown): string {
  if (is(value, SQL)) return dialect.sqlToQuery(value).sql;
  if (typeof value === 'string') return `'${value.replaceAll("'", "''")}'`;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return `'${JSON.stringify(value).replaceAll("'", "''")}'::jsonb`;
}

function columnDdl(c: PgColumn): string {
  const parts = [ident(c.name), c.getSQLType()];
  const identity = (c as unknown as { generatedIdentity?: { type: 'always' | 'byDefault' } })
    .generatedIdentity;
  if (identity)
    parts.push(`GENERATED ${identity.type === 'always' ? 'ALWAYS' : 'BY DEFAULT'} AS IDENTITY`);
  if (c.notNull) parts.push('NOT NULL');
  if (c.default !== undefined) parts.push(`DEFAULT ${literal(c.default)}`);
  return parts.join(' ');
}

/** CREATE TABLE statements for every drizzle table, columns and primary keys only. */
function drizzleDdl(target: string): string[] {
  return tables.map((t) => {
    const cfg = getTableConfig(t);
    const defs = cfg.columns.map(columnDdl);
    const pk = cfg.columns.filter((c) => c.primary).map((c) => ident(c.name));
    for (const p of cfg.primaryKeys) pk.push(...p.columns.map((c) => ident(c.name)));
    if (pk.length) defs.push(`PRIMARY KEY (${pk.join(', ')})`);
    return `CREATE TABLE ${ident(target)}.${ident(cfg.name)} (${defs.join(', ')})`;
  });
}

type Row = Record<string, unknown>;
async function rows(database: Database, query: SQL): Promise<Row[]> {
  return ((await database.db.execute(query)) as unknown as { rows: Row[] }).rows;
}

/** Columns of a schema as comparable lines, table by table. */
async function catalog(database: Database, schemaName: string): Promise<Map<string, string[]>> {
  const columns = await rows(
    database,
    sql`select table_name, column_name, data_type, udt_name, is_nullable, column_default,
               datetime_precision, character_maximum_length, is_identity, identity_generation
          from information_schema.columns where table_schema = ${schemaName}
          order by table_name, column_name`,
  );
  const keys = await rows(
    database,
    sql`select tc.table_name, kcu.column_name
          from information_schema.table_constraints tc
          join information_schema.key_column_usage kcu
            on kcu.constraint_name = tc.constraint_name and kcu.table_schema = tc.table_schema
         where tc.table_schema = ${schemaName} and tc.constraint_type = 'PRIMARY KEY'
         order by tc.table_name, kcu.column_name`,
  );
  const out = new Map<string, string[]>();
  for (const c of columns) {
    const table = String(c.table_name);
    // A sequence or type default names its schema only outside the search path.
    const def =
      c.column_default == null
        ? 'no default'
        : `default ${String(c.column_default).replaceAll(`${FROM_DRIZZLE}.`, '')}`;
    const line = [
      c.column_name,
      c.data_type === 'USER-DEFINED' ? c.udt_name : c.data_type,
      c.datetime_precision == null ? '' : `precision ${String(c.datetime_precision)}`,
      c.character_maximum_length == null ? '' : `length ${String(c.character_maximum_length)}`,
      c.is_nullable === 'YES' ? 'null' : 'not null',
      def,
      c.is_identity === 'YES' ? `identity ${String(c.identity_generation)}` : '',
    ]
      .filter(Boolean)
      .join(' ');
    out.set(table, [...(out.get(table) ?? []), line]);
  }
  for (const k of keys) {
    const table = String(k.table_name);
    out.set(table, [...(out.get(table) ?? []), `primary key ${String(k.column_name)}`]);
  }
  return out;
}

describe.each(DRIVERS)('schema.ts and the migrations agree (%s)', (driver) => {
  let database: Database;
  let drop: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    if (driver === 'pglite') {
      database = await openSnapshotDatabase();
    } else {
      const created = await createTestDatabase(
        process.env[PG_ENV] as string,
        inject('pgRunId') as string,
        inject('pgTemplate'),
      );
      drop = created.drop;
      database = await openDatabase({ url: created.url, poolSize: 1 });
    }
    await database.db.execute(sql.raw(`CREATE SCHEMA ${ident(FROM_DRIZZLE)}`));
    for (const ddl of drizzleDdl(FROM_DRIZZLE)) await database.db.execute(sql.raw(ddl));
  });
  afterAll(async () => {
    await database?.close();
    await drop?.();
  });

  it('has the same tables', async () => {
    const migrated = await catalog(database, 'public');
    for (const t of MIGRATIONS_ONLY) migrated.delete(t);
    const declared = await catalog(database, FROM_DRIZZLE);
    expect([...declared.keys()].sort()).toEqual([...migrated.keys()].sort());
  });

  it('has the same columns, types, nullability, defaults and primary keys in every table', async () => {
    const migrated = await catalog(database, 'public');
    for (const t of MIGRATIONS_ONLY) migrated.delete(t);
    const declared = await catalog(database, FROM_DRIZZLE);
    // One comparison, so a failure lists every disagreement at once. Received: schema.ts.
    expect(Object.fromEntries(declared)).toEqual(Object.fromEntries(migrated));
  });

  it('notices a disagreement (the comparison can fail)', async () => {
    await database.db.execute(
      sql.raw(`ALTER TABLE ${ident(FROM_DRIZZLE)}.gateways ALTER COLUMN name DROP NOT NULL`),
    );
    try {
      const migrated = await catalog(database, 'public');
      const declared = await catalog(database, FROM_DRIZZLE);
      expect(declared.get('gateways')).not.toEqual(migrated.get('gateways'));
    } finally {
      await database.db.execute(
        sql.raw(`ALTER TABLE ${ident(FROM_DRIZZLE)}.gateways ALTER COLUMN name SET NOT NULL`),
      );
    }
  });
});
