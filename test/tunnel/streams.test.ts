import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { beforeAll, describe, expect, it } from 'vitest';
import { StreamOpenError } from '../../src/server/tunnel/errors.js';
import type { GatewayLive } from '../../src/server/tunnel/session.js';
import { freePort, roundTrip, sleep, TunnelHarness, within, type AgentHandle } from './harness.js';
import { withTunnelHarness, type EchoServer } from './suite.js';

describe('tunnel streams', () => {
  let harness: TunnelHarness;
  let echo: EchoServer;
  let agent: AgentHandle;
  withTunnelHarness((suite) => ({ harness, echo } = suite));
  beforeAll(async () => {
    agent = await harness.startGateway(['--allow', '127.0.0.1:*', '--label', 'zone=a']);
  });

  it('reports status: version, labels, no streams', () => {
    const live = harness.hub.live(agent.gatewayId);
    expect(live).toMatchObject({
      gatewayId: agent.gatewayId,
      orgId: harness.orgId,
      version: '0.1.0',
      labels: { zone: 'a' },
      draining: false,
      activeStreams: 0,
    });
    expect(live?.remoteAddress).toBe('127.0.0.1');
  });

  it('carries a stream to a loopback echo target with integrity and half-close', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 17);
    const stream = await harness.hub.openStream(agent.gatewayId, '127.0.0.1', echo.port);
    const back = await roundTrip(stream, data, 10_000);
    expect(back.length).toBe(data.length);
    expect(createHash('sha256').update(back).digest('hex')).toBe(
      createHash('sha256').update(data).digest('hex'),
    );
  });

  it('runs many concurrent streams', async () => {
    const results = await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        const stream = await harness.hub.openStream(agent.gatewayId, '127.0.0.1', echo.port);
        const payload = Buffer.from(`stream ${i} `.repeat(100));
        return (await roundTrip(stream, payload)).equals(payload);
      }),
    );
    expect(results.every(Boolean)).toBe(true);
  });

  it('refuses a target outside the allowlist (403) without dialing it', async () => {
    const error = await harness.hub.openStream(agent.gatewayId, '127.0.0.2', echo.port).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(StreamOpenError);
    expect(error).toMatchObject({
      reason: 'refused',
      gatewayId: agent.gatewayId,
      reachedTarget: false,
    });
    expect((error as StreamOpenError).gatewayReason).toMatch(/not allowed/);
  });

  it('bytes sent ahead with the CONNECT reach the target once it is dialled, first and once; a refused open dials nothing', async () => {
    const ahead = Buffer.from('first packet');
    const stream = await harness.hub.openStream(agent.gatewayId, '127.0.0.1', echo.port, {
      sendAhead: ahead,
    });
    // Nothing written by the caller yet: the echo can only be answering the bytes sent ahead.
    const [echoed] = (await within(once(stream, 'data'), 5000, 'echo of the bytes sent ahead')) as [
      Buffer,
    ];
    expect(echoed.toString()).toBe('first packet');
    const rest = randomBytes(64 * 1024);
    const back = await roundTrip(stream, rest, 10_000);
    expect(back.equals(rest)).toBe(true);

    // A gateway that refuses the target never dials it, so nothing sent ahead can reach it.
    let dialled = 0;
    const walled = net.createServer((s) => {
      dialled += 1;
      s.destroy();
    });
    await new Promise<void>((r) => walled.listen(0, '127.0.0.2', r));
    try {
      const port = (walled.address() as net.AddressInfo).port;
      await expect(
        harness.hub.openStream(agent.gatewayId, '127.0.0.2', port, { sendAhead: ahead }),
      ).rejects.toMatchObject({ reason: 'refused' });
      await sleep(100);
      expect(dialled).toBe(0);
    } finally {
      walled.close();
    }
  });

  it('answers unreachable with the reason when the target is down', async () => {
    const port = await freePort();
    const error = await harness.hub.openStream(agent.gatewayId, '127.0.0.1', port).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(StreamOpenError);
    expect(error).toMatchObject({ reason: 'unreachable' });
    expect((error as StreamOpenError).gatewayReason).toMatch(/ECONNREFUSED/);
  });

  it('rejects with not_connected for an unknown gateway', async () => {
    await expect(harness.hub.openStream('gw_nope', '127.0.0.1', echo.port)).rejects.toMatchObject({
      reason: 'not_connected',
    });
  });

  it('pings and probes through the tunnel', async () => {
    const rtt = await harness.hub.ping(agent.gatewayId);
    expect(rtt).toBeGreaterThanOrEqual(0);
    expect(rtt).toBeLessThan(100);
    const ok = await harness.hub.probe(agent.gatewayId, '127.0.0.1', echo.port, 1000);
    expect(ok).toMatchObject({ ok: true });
    const refused = await harness.hub.probe(agent.gatewayId, '10.9.9.9', 80, 1000);
    expect(refused).toMatchObject({ ok: false, stage: 'target' });
  });

  it('aborts an open by signal', async () => {
    const controller = new AbortController();
    const pending = harness.hub.openStream(agent.gatewayId, '127.0.0.1', echo.port, {
      signal: controller.signal,
    });
    controller.abort();
    await expect(within(pending, 2000, 'abort')).rejects.toMatchObject({ reason: 'aborted' });
    // The tunnel is still fine afterwards.
    const stream = await harness.hub.openStream(agent.gatewayId, '127.0.0.1', echo.port);
    expect((await roundTrip(stream, Buffer.from('after'))).toString()).toBe('after');
  });
});

describe('platform-side controls', () => {
  let harness: TunnelHarness;
  let echo: EchoServer;
  let agent: AgentHandle;
  const opens: string[] = [];
  const bytes = { in: 0, out: 0 };
  const connects: boolean[] = [];
  withTunnelHarness((suite) => ({ harness, echo } = suite), {
    hub: {
      metrics: {
        onStreamOpen: (result) => opens.push(result),
        onBytes: (direction, n) => (bytes[direction] += n),
        onConnect: (reconnect) => connects.push(reconnect),
      },
    },
  });
  beforeAll(async () => {
    agent = await harness.startGateway(['--allow', `127.0.0.1:${echo.port}`]);
  });

  it('drains and undrains a gateway through the control stream', async () => {
    expect(harness.hub.setDraining(agent.gatewayId, true)).toBe(true);
    expect(harness.hub.live(agent.gatewayId)?.draining).toBe(true);
    await expect(
      harness.hub.openStream(agent.gatewayId, '127.0.0.1', echo.port),
    ).rejects.toMatchObject({ reason: 'draining' });
    await agent.waitForOutput(/asked this gateway to drain/, 3000);
    const undrained = within(
      new Promise<void>((resolveWait) => {
        const onStatus = (live: GatewayLive): void => {
          if (live.gatewayId !== agent.gatewayId || live.draining) return;
          harness.hub.off('status', onStatus);
          resolveWait();
        };
        harness.hub.on('status', onStatus);
      }),
      3000,
      'undrain confirmed by the gateway',
    );
    harness.hub.setDraining(agent.gatewayId, false);
    await undrained;
    await agent.waitForOutput(/lifted the drain/, 3000);
    const stream = await harness.hub.openStream(agent.gatewayId, '127.0.0.1', echo.port);
    expect((await roundTrip(stream, Buffer.from('x'))).toString()).toBe('x');
  });

  it('feeds the metrics hooks', async () => {
    const before = opens.length;
    const stream = await harness.hub.openStream(agent.gatewayId, '127.0.0.1', echo.port);
    await roundTrip(stream, Buffer.alloc(256 * 1024));
    await harness.hub.openStream(agent.gatewayId, '127.0.0.2', 1).catch(() => undefined);
    expect(opens.slice(before)).toEqual(['ok', 'refused']);
    expect(connects).toEqual([false]);
    await sleep(100);
    expect(bytes.in).toBeGreaterThan(256 * 1024);
    expect(bytes.out).toBeGreaterThan(256 * 1024);
  });

  it('reports health-check targets the gateway probes', async () => {
    const target = `127.0.0.1:${echo.port}`;
    harness.hub.setHealthCheckTargets(agent.gatewayId, [target, '127.0.0.2:80']);
    await within(
      new Promise<void>((resolveWait) => {
        const onStatus = (): void => {
          const checks = harness.hub.live(agent.gatewayId)?.healthChecks ?? [];
          if (checks.length === 2) {
            harness.hub.off('status', onStatus);
            resolveWait();
          }
        };
        harness.hub.on('status', onStatus);
      }),
      4000,
      'health checks reported',
    );
    const checks = harness.hub.live(agent.gatewayId)?.healthChecks ?? [];
    expect(checks.find((c) => c.target === target)).toMatchObject({ ok: true });
    expect(checks.find((c) => c.target === '127.0.0.2:80')).toMatchObject({ ok: false });
  });
});
