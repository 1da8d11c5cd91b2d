/**
 * The sweep for connections a crash left open (audit/lost-connections.ts), on the database
 * itself: which `access.connect` entries it closes as `lost` and which it leaves alone.
 * lost-connections.test.ts covers it end to end with real processes.
 */
import { randomUUID } from 'node:crypto';
import { asc, eq } from 'drizzle-orm';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { LOST_ERROR, recordLostConnections } from '../../src/server/audit/lost-connections.js';
import { openDatabase, type Database } from '../../src/server/db/client.js';
import { SERVER_APPLICATION_NAME } from '../../src/server/db/node-watch.js';
import { auditLogs, organizations } from '../../src/server/db/schema.js';
import { DRIVERS, openSnapshotDatabase } from '../helpers/platform.js';
import { createTestDatabase, PG_ENV } from '../helpers/postgres.js';

const DAY = 24 * 60 * 60_000;

describe.each(DRIVERS)('recording lost access connections (%s)', (driver) => {
  // A migrated database and no platform: a platform's own sweep would race these.
  let database: Database;
  let url: string | undefined;
  let drop: (() => Promise<void>) | undefined;
  beforeAll(async () => {
    if (driver === 'pglite') database = await openSnapshotDatabase();
    else {
      const created = await createTestDatabase(
        process.env[PG_ENV]!,
        inject('pgRunId')!,
        inject('pgTemplate'),
      );
      ({ url, drop } = created);
      database = await openDatabase({ url });
    }
  }, 120_000);
  afterAll(async () => {
    await database?.close();
    await drop?.();
  });

  async function org(): Promise<string> {
    const id = randomUUID();
    await database.db.insert(organizations).values({ id, name: `org-${id}` });
    return id;
  }

  const actor = { actorType: 'user', actorId: randomUUID(), actorName: 'ann@example.com' };

  async function connect(
    orgId: string,
    metadata: Record<string, unknown>,
    createdAt = new Date(),
  ): Promise<void> {
    await database.db.insert(auditLogs).values({
      orgId,
      event: 'access.connect',
      ...actor,
      metadata: { target: 'db', gatewayId: 'g1', gateway: 'gw', ...metadata },
      ip: '10.0.0.9',
      userAgent: 'gatepool-cli',
      createdAt,
    });
  }

  async function disconnect(orgId: string, connectionId: string): Promise<void> {
    await database.db.insert(auditLogs).values({
      orgId,
      event: 'access.disconnect',
      ...actor,
      metadata: { connectionId, result: 'closed' },
    });
  }

  const disconnects = async (orgId: string) =>
    (
      await database.db
        .select()
        .from(auditLogs)
        .where(eq(auditLogs.orgId, orgId))
        .orderBy(asc(auditLogs.id))
    ).filter((e) => e.event === 'access.disconnect');

  it('closes unpaired connects of gone servers as lost, in their org, once; leaves the rest', async () => {
    const [a, b] = [await org(), await org()];
    const dead = randomUUID();
    const me = randomUUID();
    await connect(a, { connectionId: 'open-a', serverId: dead });
    await connect(a, { connectionId: 'closed-a', serverId: dead });
    await disconnect(a, 'closed-a');
    // Written before connectionId existed: cannot be paired, left alone.
    await connect(a, { serverId: dead });
    await connect(a, { connectionId: 'old-a', serverId: dead }, new Date(Date.now() - 31 * DAY));
    await connect(a, { connectionId: 'mine-a', serverId: me });
    await connect(b, { connectionId: 'open-b', serverId: dead });

    const first = await recordLostConnections(database.db, me);
    expect(first).toEqual({ recorded: 2, more: [] });
    const inA = await disconnects(a);
    expect(inA.map((e) => [e.metadata.connectionId, e.metadata.result])).toEqual([
      ['closed-a', 'closed'],
      ['open-a', 'lost'],
    ]);
    const lost = inA[1]!;
    expect(lost).toMatchObject({ ...actor, ip: '10.0.0.9', userAgent: 'gatepool-cli' });
    expect(lost.metadata).toEqual({
      target: 'db',
      gatewayId: 'g1',
      gateway: 'gw',
      connectionId: 'open-a',
      serverId: dead,
      result: 'lost',
      error: LOST_ERROR,
      bytesToTarget: null,
      bytesFromTarget: null,
      durationMs: null,
    });
    expect((await disconnects(b)).map((e) => e.metadata.connectionId)).toEqual(['open-b']);

    expect(await recordLostConnections(database.db, me)).toEqual({ recorded: 0, more: [] });
    // Once that server is gone too, its connection is lost as well.
    expect(await recordLostConnections(database.db, randomUUID())).toEqual({
      recorded: 1,
      more: [],
    });
    expect((await disconnects(a)).at(-1)?.metadata).toMatchObject({
      connectionId: 'mine-a',
      result: 'lost',
    });
  });

  it('writes a bounded batch per org, oldest first, and the rest next time', async () => {
    const a = await org();
    const dead = randomUUID();
    for (const [i, ago] of [3, 2, 1].entries())
      await connect(a, { connectionId: `c${i}`, serverId: dead }, new Date(Date.now() - ago * DAY));
    expect(await recordLostConnections(database.db, randomUUID(), { batch: 2 })).toEqual({
      recorded: 2,
      more: [a],
    });
    expect((await disconnects(a)).map((e) => e.metadata.connectionId)).toEqual(['c0', 'c1']);
    expect(await recordLostConnections(database.db, randomUUID(), { batch: 2 })).toEqual({
      recorded: 1,
      more: [],
    });
  });

  it.runIf(driver === 'postgres')(
    'leaves alone the connections of another server with a session on the database',
    async () => {
      const a = await org();
      // A live server's session, as db/node-watch.ts names it.
      const live = randomUUID();
      const session = new pg.Client({
        connectionString: url,
        application_name: `${SERVER_APPLICATION_NAME} ${live}`,
      });
      await session.connect();
      try {
        await connect(a, { connectionId: 'live', serverId: live });
        expect(await recordLostConnections(database.db, randomUUID())).toEqual({
          recorded: 0,
          more: [],
        });
        expect(await disconnects(a)).toEqual([]);
      } finally {
        await session.end();
      }
      // Its session gone, the server is gone: its connection was lost.
      expect(await recordLostConnections(database.db, randomUUID())).toEqual({
        recorded: 1,
        more: [],
      });
    },
  );
});
