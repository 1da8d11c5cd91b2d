import type { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { roundTrip, sleep, TunnelHarness, within } from './harness.js';
import { withTunnelHarness, type EchoServer } from './suite.js';

function readOnce(stream: Duplex, ms: number): Promise<Buffer> {
  return within(
    new Promise<Buffer>((resolveRead) =>
      stream.once('data', (chunk: Buffer) => resolveRead(chunk)),
    ),
    ms,
    'echo',
  );
}

describe('gateway drain on SIGTERM', () => {
  let harness: TunnelHarness;
  let echo: EchoServer;
  withTunnelHarness((suite) => ({ harness, echo } = suite));

  it('refuses new streams, lets an open one finish, then exits 0', async () => {
    const agent = await harness.startGateway(['--allow', `127.0.0.1:${echo.port}`]);
    const open = await harness.hub.openStream(agent.gatewayId, '127.0.0.1', echo.port);
    open.write('before');
    expect((await readOnce(open, 2000)).toString()).toBe('before');

    agent.child.kill('SIGTERM');
    await agent.waitForOutput(/draining: refusing new streams/, 3000);
    // Status reaches the platform at once, so the refusal may be local or the gateway's 503.
    await expect(
      harness.hub.openStream(agent.gatewayId, '127.0.0.1', echo.port),
    ).rejects.toMatchObject({ reason: 'draining' });
    expect(harness.hub.live(agent.gatewayId)?.draining).toBe(true);

    // The open stream still works both ways while draining.
    await sleep(300);
    expect((await roundTrip(open, Buffer.from('after'))).toString()).toBe('after');
    const exit = await within(agent.exited, 3000, 'agent exit after drain');
    expect(exit).toEqual({ code: 0, signal: null });
    await agent.waitForOutput(/drained; exiting/, 1000);
  });

  it('cuts streams still open at --drain-timeout and still exits 0', async () => {
    const agent = await harness.startGateway([
      '--allow',
      `127.0.0.1:${echo.port}`,
      '--drain-timeout',
      '0.5',
    ]);
    const open = await harness.hub.openStream(agent.gatewayId, '127.0.0.1', echo.port);
    const closed = within(
      new Promise<void>((resolveClose) => open.on('close', () => resolveClose())),
      3000,
      'stream cut at drain timeout',
    );
    open.on('error', () => undefined);
    const started = performance.now();
    agent.child.kill('SIGTERM');
    const exit = await within(agent.exited, 3000, 'agent exit');
    expect(exit.code).toBe(0);
    expect(performance.now() - started).toBeGreaterThanOrEqual(450);
    await closed;
    expect(agent.output()).toMatch(/drain timeout: closing 1 stream/);
  });

  it('exits at once on SIGTERM with no open stream', async () => {
    const agent = await harness.startGateway();
    const disconnected = harness.waitDisconnected(agent.gatewayId, 2000);
    agent.child.kill('SIGINT');
    expect(await within(agent.exited, 2000, 'agent exit')).toEqual({ code: 0, signal: null });
    expect(await disconnected).toBe('gateway shut down');
  });
});

describe('stream cancellation', () => {
  let harness: TunnelHarness;
  let echo: EchoServer;
  withTunnelHarness((suite) => ({ harness, echo } = suite));

  it('keeps the session up through 5,000 abrupt cancellations', async () => {
    // Node 20's HTTP/2 server (the gateway) drops the whole session after ~1,000 received
    // RST_STREAMs; cancellations must not be resets (DESIGN §2 trap 1).
    const agent = await harness.startGateway(['--allow', `127.0.0.1:${echo.port}`]);
    const before = harness.hub.live(agent.gatewayId);
    let disconnects = 0;
    harness.hub.on('disconnected', () => (disconnects += 1));
    const TOTAL = 5000;
    const BATCH = 250;
    let cancelled = 0;
    const started = performance.now();
    for (let done = 0; done < TOTAL; done += BATCH) {
      await within(
        Promise.all(
          Array.from({ length: BATCH }, async (_, i) => {
            const kind = (done + i) % 4;
            if (kind === 0) {
              // Cancelled before the gateway answered.
              const controller = new AbortController();
              const pending = harness.hub.openStream(agent.gatewayId, '127.0.0.1', echo.port, {
                signal: controller.signal,
              });
              controller.abort();
              await pending.catch(() => undefined);
            } else {
              const stream = await harness.hub.openStream(agent.gatewayId, '127.0.0.1', echo.port);
              stream.on('error', () => undefined);
              if (kind === 2) stream.write(Buffer.alloc(64 * 1024, 1));
              if (kind === 3) {
                // Our END_STREAM already left, so this cancel goes over the control stream.
                stream.end('x');
              }
              stream.destroy();
            }
            cancelled += 1;
          }),
        ),
        20_000,
        `cancellation batch at ${done}`,
      );
    }
    const elapsed = performance.now() - started;
    expect(cancelled).toBe(TOTAL);
    expect(disconnects).toBe(0);
    expect(harness.hub.live(agent.gatewayId)).toBe(before);
    expect(elapsed).toBeLessThan(20_000);

    // Still serving, and the gateway's own count of open streams drains back to zero.
    const stream = await harness.hub.openStream(agent.gatewayId, '127.0.0.1', echo.port);
    expect((await roundTrip(stream, Buffer.from('alive'))).toString()).toBe('alive');
    await within(
      (async () => {
        while ((harness.hub.live(agent.gatewayId)?.activeStreams ?? -1) !== 0) await sleep(100);
      })(),
      5000,
      'gateway reports no active streams',
    );
  });
});
