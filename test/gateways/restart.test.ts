/**
 * Platform restart: the gateway notices, retries with backoff and reconnects by itself to the
 * new process, which recognises it from the persisted state (same DB, same root key, same CA).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/server/config.js';
import { startPlatform, type Platform } from '../../src/server/server.js';
import { AgentFleet } from '../helpers/gateway-agent.js';
import { api, bootstrap, DRIVERS, waitFor } from '../helpers/platform.js';
import { createTestDatabase } from '../helpers/postgres.js';
import { freePort, roundTrip, sleep, startEchoServer } from '../tunnel/harness.js';
import { inject } from 'vitest';

describe.each(DRIVERS)('platform restart (%s)', (driver) => {
  const fleet = new AgentFleet();
  const dataDir = mkdtempSync(join(tmpdir(), 'gatepool-restart-'));
  const cleanups: (() => Promise<void> | void)[] = [
    () => rmSync(dataDir, { recursive: true, force: true }),
  ];
  afterAll(async () => {
    await fleet.close();
    for (const fn of cleanups.reverse()) await fn();
  });

  it('a connected gateway reconnects by itself after the platform restarts', async () => {
    const echo = await startEchoServer();
    cleanups.push(() => echo.close());
    const [port, tunnelPort] = [await freePort(), await freePort()];
    const env: Record<string, string> = {
      GATEPOOL_HOST: '127.0.0.1',
      GATEPOOL_PORT: String(port),
      GATEPOOL_TUNNEL_PORT: String(tunnelPort),
      GATEPOOL_TUNNEL_HOSTNAME: '127.0.0.1',
      GATEPOOL_DATA_DIR: dataDir,
      GATEPOOL_LOG_LEVEL: 'silent',
    };
    // PostgreSQL: a fresh database; PGlite: on disk in dataDir, reopened by the new process.
    if (driver === 'postgres') {
      const created = await createTestDatabase(
        process.env.GATEPOOL_TEST_DATABASE_URL as string,
        inject('pgRunId') ?? 'restart',
        inject('pgTemplate'),
      );
      cleanups.push(created.drop);
      env.DATABASE_URL = created.url;
    }
    const start = () => startPlatform(loadConfig(env), { logger: pino({ level: 'silent' }) });
    let platform: Platform = await start();
    cleanups.push(() => platform.close());
    const admin = await bootstrap(platform.url);
    const token = (await admin.client.post('/api/v1/gateways/enrollment-tokens', {})).body
      .token as string;
    const agent = await fleet.start({
      platformUrl: platform.url,
      token,
      name: 'gw-restart',
      allow: [`127.0.0.1:${echo.port}`],
    });
    await agent.waitForOutput(/tunnel up/, 15_000);
    const gatewayId = (await admin.client.get('/api/v1/gateways')).body.items[0].id as string;

    await platform.close();
    await sleep(300);
    platform = await start();
    const client = api(platform.url, admin.token);
    await waitFor(
      async () => (await client.get(`/api/v1/gateways/${gatewayId}`)).body?.health === 'healthy',
      15_000,
      'reconnected',
    );
    expect(agent.output()).toMatch(/reconnect|retrying/i);
    const stream = await platform.ctx.directory.hub.openStream(gatewayId, '127.0.0.1', echo.port);
    expect((await roundTrip(stream, Buffer.from('after restart'))).toString()).toBe(
      'after restart',
    );
  }, 60_000);
});
