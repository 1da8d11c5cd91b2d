/**
 * Access connections open when the platform is killed (audit/lost-connections.ts), with real
 * processes: a `gatepool server`, a gateway agent, `gatepool connect` and a loopback echo server
 * as the target. The server is SIGKILLed with a connection open and restarted on the same data
 * (directory or PostgreSQL database): the audit log then holds exactly one `access.disconnect`
 * with result `lost` for it, paired by connectionId and attributed to whoever connected. A
 * connection closed after the restart is recorded once, as closed; another restart writes
 * nothing new.
 *
 * On PostgreSQL (GATEPOOL_TEST_DATABASE_URL: a database of its own on the shared server, dropped
 * afterwards), also: a second server waiting for the single-node lock records nothing while the
 * first is alive, and records the first's open connection once it takes over.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { freePort, startConnect } from '../access/scenario.js';
import { AgentFleet } from '../helpers/gateway-agent.js';
import { bootstrap, waitFor, type Account, type ApiClient } from '../helpers/platform.js';
import { createTestDatabase, PG_ENV } from '../helpers/postgres.js';
import { within } from '../tunnel/harness.js';
import { startServer, type ServerProcess } from './processes.js';

const pgUrl = process.env[PG_ENV];
const LOST_LINE =
  /recorded (\d+) access connections as lost \(the platform had stopped without closing them\)/;

interface Entry {
  id: string;
  event: string;
  actor: { type: string; id: string | null; name: string | null };
  metadata: Record<string, unknown>;
  ip: string | null;
  createdAt: string;
}

async function entries(client: ApiClient, event: string): Promise<Entry[]> {
  const res = await client.get(`/api/v1/audit-logs?event=${event}&limit=100`);
  if (res.status !== 200) throw new Error(`audit log: ${res.status} ${res.text}`);
  return res.body.items as Entry[];
}

/** A target that sends back what it gets. */
async function startEcho(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    s.pipe(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** A connection through `gatepool connect`'s local port that has carried a round trip. */
async function openThrough(port: number): Promise<net.Socket> {
  const socket = net.connect({ host: '127.0.0.1', port });
  socket.on('error', () => undefined);
  const echoed = new Promise<string>((resolve) =>
    socket.setEncoding('utf8').once('data', (d: string) => resolve(d)),
  );
  socket.write('ping');
  expect(await within(echoed, 15_000, 'an echo through gatepool connect')).toBe('ping');
  return socket;
}

/** The value of gatepool_access_connections_total{result="lost"}, undefined before any sweep. */
async function lostMetric(url: string): Promise<number | undefined> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = /^gatepool_access_connections_total\{result="lost"\} (\d+)$/m.exec(text);
  return m ? Number(m[1]) : undefined;
}

const drivers: ('pglite' | 'postgres')[] = pgUrl ? ['pglite', 'postgres'] : ['pglite'];

describe.each(drivers)('access connections a crash left open (%s)', (driver) => {
  const fleet = new AgentFleet();
  const cleanups: (() => Promise<unknown>)[] = [];
  const servers: ServerProcess[] = [];
  afterAll(async () => {
    for (const s of servers) await s.kill('SIGKILL');
    await fleet.close();
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  });

  /** Platform settings that survive a restart: the same data, the same ports. */
  async function platformEnv(): Promise<Record<string, string>> {
    const dir = await mkdtemp(join(tmpdir(), 'gatepool-lost-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const env: Record<string, string> = {
      GATEPOOL_DATA_DIR: join(dir, 'data'),
      GATEPOOL_PORT: String(await freePort()),
      GATEPOOL_TUNNEL_PORT: String(await freePort()),
    };
    if (driver === 'postgres') {
      const db = await createTestDatabase(pgUrl!, inject('pgRunId') ?? 'lost', null);
      cleanups.push(db.drop);
      env.DATABASE_URL = db.url;
    }
    return env;
  }

  async function start(env: Record<string, string>): Promise<ServerProcess> {
    const server = await startServer(env);
    servers.push(server);
    return server;
  }

  /** A gateway, an access target `echo` through it, and `gatepool connect echo` running. */
  async function arrange(server: ServerProcess, admin: Account) {
    const echo = await startEcho();
    cleanups.push(() => echo.close());
    const enroll = await admin.client.post('/api/v1/gateways/enrollment-tokens', {});
    expect(enroll.status).toBe(201);
    const agent = await fleet.start({
      platformUrl: server.url,
      token: enroll.body.token,
      name: 'gw',
      allow: [`127.0.0.1:${echo.port}`],
    });
    const gw = await gatewayHealthy(admin);
    const target = await admin.client.post('/api/v1/access-targets', {
      name: 'echo',
      host: '127.0.0.1',
      port: echo.port,
      protocol: 'tcp',
      gatewayId: gw.id,
    });
    expect(target.status, target.text).toBe(201);
    const connect = await startConnect('echo', {
      GATEPOOL_PLATFORM: server.url,
      GATEPOOL_TOKEN: admin.token,
    });
    cleanups.push(() => connect.stop());
    return { agent, gw, connect };
  }

  async function gatewayHealthy(admin: Account): Promise<{ id: string; name: string }> {
    return waitFor(
      async () => {
        const list = await admin.client.get('/api/v1/gateways?limit=10');
        const found = list.body.items?.find((g: { name: string }) => g.name === 'gw');
        return found?.health === 'healthy' ? found : undefined;
      },
      60_000,
      'gateway healthy',
    );
  }

  /** The access.connect entry of a connection opened after `known` entries were there. */
  async function newConnect(admin: Account, known: Set<string>): Promise<Entry> {
    return waitFor(
      async () => (await entries(admin.client, 'access.connect')).find((e) => !known.has(e.id)),
      10_000,
      'the access.connect entry',
    );
  }

  it('records the open connection as lost once, paired by connectionId; a later clean close once; another restart nothing', async () => {
    const env = await platformEnv();
    let server = await start(env);
    const admin = await bootstrap(server.url);
    const { gw, connect } = await arrange(server, admin);

    const socket = await openThrough(connect.port);
    const connected = await newConnect(admin, new Set());
    const connectionId = connected.metadata.connectionId as string;
    expect(connectionId).toMatch(/^[0-9a-f-]{36}$/);
    expect(await entries(admin.client, 'access.disconnect')).toEqual([]);

    server.proc.kill('SIGKILL');
    expect(await server.exited).toBe('SIGKILL');
    socket.destroy();
    server = await start(env);

    const lost = await waitFor(
      async () => {
        const found = await entries(admin.client, 'access.disconnect');
        return found.length ? found : undefined;
      },
      30_000,
      'the lost connection recorded',
    );
    expect(lost).toHaveLength(1);
    const [entry] = lost;
    expect(entry!.actor).toEqual(connected.actor);
    expect(entry!.ip).toBe(connected.ip);
    expect(entry!.metadata).toMatchObject({
      connectionId,
      result: 'lost',
      target: 'echo',
      targetId: connected.metadata.targetId,
      gatewayId: gw.id,
      gateway: 'gw',
      clientAddress: connected.metadata.clientAddress,
      bytesToTarget: null,
      bytesFromTarget: null,
      durationMs: null,
    });
    expect(entry!.metadata.error).toMatch(
      /^the platform stopped without recording this connection's end \(crash or kill\)/,
    );
    expect(await lostMetric(server.url)).toBe(1);
    expect(LOST_LINE.exec(server.output())?.[1]).toBe('1');

    // A connection through the restarted platform ends cleanly: recorded once, as closed.
    await gatewayHealthy(admin);
    const known = new Set((await entries(admin.client, 'access.connect')).map((e) => e.id));
    const second = await openThrough(connect.port);
    const secondId = (await newConnect(admin, known)).metadata.connectionId as string;
    expect(secondId).not.toBe(connectionId);
    second.end();
    const closed = await waitFor(
      async () =>
        (await entries(admin.client, 'access.disconnect')).find(
          (e) => e.metadata.connectionId === secondId,
        ),
      15_000,
      'the clean close recorded',
    );
    expect(closed.metadata.result).toBe('closed');
    const before = await entries(admin.client, 'access.disconnect');
    expect(before).toHaveLength(2);

    // Nothing is left open: another kill and start records nothing new.
    server.proc.kill('SIGKILL');
    await server.exited;
    server = await start(env);
    // The series appears once the org's sweep has committed (counted even when 0).
    await waitFor(async () => (await lostMetric(server.url)) !== undefined, 30_000, 'the sweep');
    expect(await lostMetric(server.url)).toBe(0);
    expect(await entries(admin.client, 'access.disconnect')).toEqual(before);
    expect(server.output()).not.toMatch(LOST_LINE);
  }, 300_000);

  it.runIf(driver === 'postgres')(
    'a server waiting for the database records nothing while the first is alive, and its open connection once it takes over',
    async () => {
      const env = await platformEnv();
      const first = await start(env);
      const admin = await bootstrap(first.url);
      const { connect } = await arrange(first, admin);
      await openThrough(connect.port);
      const connectionId = (await newConnect(admin, new Set())).metadata.connectionId as string;

      // Same database, ports of its own: it serves, but does not hold the database.
      const second = await start({
        ...env,
        GATEPOOL_PORT: String(await freePort()),
        GATEPOOL_TUNNEL_PORT: String(await freePort()),
      });
      await waitFor(
        () => /another gatepool server is running on this database/.test(second.output()),
        15_000,
        'the second server to be told of the first',
      );
      expect(await lostMetric(second.url)).toBeUndefined();
      expect(await entries(admin.client, 'access.disconnect')).toEqual([]);

      first.proc.kill('SIGKILL');
      await first.exited;
      // The second waits in the lock's queue: it holds the database as the first's session ends.
      const lost = await waitFor(
        async () => {
          const found = await entries(second.api(admin.token), 'access.disconnect');
          return found.length ? found : undefined;
        },
        15_000,
        'the takeover to record the lost connection',
      );
      expect(lost.map((e) => [e.metadata.connectionId, e.metadata.result])).toEqual([
        [connectionId, 'lost'],
      ]);
      expect(await lostMetric(second.url)).toBe(1);
    },
    300_000,
  );
});
