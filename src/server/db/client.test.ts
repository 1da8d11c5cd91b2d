/**
 * node-postgres under connection loss, through a loopback proxy in front of the test
 * PostgreSQL that can doom the connections open so far (each dies at its next byte, as after a
 * server restart) while new ones work: a transaction whose BEGIN meets a dead connection must
 * not leak its client (a pool of one would then be stuck for good), and a plain read is retried
 * once on a fresh connection while a write is not.
 */
import net, { type AddressInfo, type Socket } from 'node:net';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from './client.js';
import { DatabaseUnavailableError, isDatabaseUnavailable } from './errors.js';

const PG = process.env.GATEPOOL_TEST_DATABASE_URL;

describe.skipIf(!PG)('PostgreSQL connection loss', () => {
  let proxy: net.Server;
  let url: string;
  const open = new Set<Socket>();
  let doomed = new Set<Socket>();
  let connections = 0;
  const rowsOf = (r: unknown) => (r as { rows: unknown[] }).rows;
  const doomOpenConnections = () => void (doomed = new Set(open));

  beforeAll(async () => {
    const upstream = new URL(PG!);
    proxy = net.createServer((client) => {
      const server = net.connect(Number(upstream.port || 5432), upstream.hostname);
      connections++;
      open.add(client);
      client.on('close', () => open.delete(client));
      for (const s of [client, server]) s.on('error', () => undefined);
      const pipe = (from: Socket, to: Socket) =>
        from.on('data', (chunk: Buffer) => {
          if (doomed.has(client)) {
            client.destroy();
            server.destroy();
          } else to.write(chunk);
        });
      pipe(client, server);
      pipe(server, client);
      client.on('close', () => server.destroy());
      server.on('close', () => client.destroy());
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const u = new URL(PG!);
    u.hostname = '127.0.0.1';
    u.port = String((proxy.address() as AddressInfo).port);
    url = u.toString();
  });
  afterAll(async () => {
    for (const s of open) s.destroy();
    await new Promise((r) => proxy.close(r));
  });

  it('a BEGIN on a dead connection does not leak its client (pool of one)', async () => {
    const database = await openDatabase({ url, poolSize: 1 });
    try {
      for (let i = 0; i < 3; i++) {
        await database.ping(); // the pool's one client, connected and idle
        doomOpenConnections();
        const err = await database.db
          .transaction(async (tx) => tx.execute(sql`select 1`))
          .catch((e: unknown) => e);
        expect(isDatabaseUnavailable(err), String(err)).toBe(true);
      }
      const started = Date.now();
      const result = await database.db.transaction(async (tx) => tx.execute(sql`select 2 as n`));
      expect(rowsOf(result)[0]).toEqual({ n: 2 });
      // At once, not after the 5 s checkout timeout of a pool with no client left.
      expect(Date.now() - started).toBeLessThan(4000);
    } finally {
      await database.close();
    }
  });

  it('retries a plain read once on a fresh connection; a write is not retried', async () => {
    const database = await openDatabase({ url, poolSize: 1 });
    try {
      await database.ping();
      doomOpenConnections();
      const before = connections;
      const read = await database.db.execute(sql`select 3 as n`);
      expect(rowsOf(read)[0]).toEqual({ n: 3 });
      expect(connections).toBe(before + 1);

      doomOpenConnections();
      const beforeWrite = connections;
      const write = await database.db
        .execute(sql`set application_name = 'gatepool-test'`)
        .catch((e: unknown) => e);
      expect(isDatabaseUnavailable(write), String(write)).toBe(true);
      expect((write as Error).cause).toBeInstanceOf(DatabaseUnavailableError);
      expect(connections).toBe(beforeWrite);
    } finally {
      await database.close();
    }
  });
});
