import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import tls from 'node:tls';
import { describe, expect, it } from 'vitest';
import { loadState } from '../../src/gateway/state.js';
import { createOrgCa, createTunnelServerCa } from '../../src/server/gateways/pki.js';
import { roundTrip, sleep, startEchoServer, TunnelHarness, within } from './harness.js';
import { withTunnelHarness, type EchoServer } from './suite.js';

describe('tunnel trust', () => {
  let harness: TunnelHarness;
  withTunnelHarness((suite) => ({ harness } = suite), { echo: false });

  it('refuses a certificate from another org CA at the TLS layer', async () => {
    const otherCa = await createOrgCa('org_other');
    // Registered, so only the TLS layer can be what refuses it.
    const { gatewayId, stateDir } = await harness.createGateway({
      ca: otherCa,
      orgId: 'org_other',
    });
    const state = await loadState(stateDir);
    // Node's TLS server verifies client chains right after the handshake and closes the socket
    // before any application byte: the HTTP/2 layer and identify() never see the connection.
    const outcome = await within(
      new Promise<{ bytesRead: number; secure: boolean }>((resolveClose) => {
        let secure = false;
        const socket = tls.connect({
          host: '127.0.0.1',
          port: harness.port,
          key: state?.keyPem,
          cert: state?.certificatePem,
          ca: [harness.serverCa.certPem],
          ALPNProtocols: ['h2'],
        });
        socket.on('error', () => undefined);
        socket.on('secureConnect', () => {
          secure = true;
          socket.resume();
        });
        socket.on('close', () => resolveClose({ bytesRead: socket.bytesRead, secure }));
      }),
      3000,
      'TLS refusal',
    );
    expect(outcome.bytesRead).toBe(0);
    expect(harness.identifyCalls).not.toContain(gatewayId);

    const agent = harness.spawnAgent(gatewayId, stateDir);
    await agent.waitForOutput(
      /refused this gateway's certificate \(closed right after the TLS handshake/,
      8000,
    );
    // Not a verdict on this gateway (a platform with a replaced database looks the same): after
    // a few attempts the agent suggests enrolling again, and keeps trying.
    await agent.waitForOutput(
      /probably needs to enroll again \(new token, fresh --state-dir\)/,
      8000,
    );
    expect(agent.child.exitCode).toBeNull();
    expect(harness.identifyCalls).not.toContain(gatewayId);
    expect(harness.hub.live(gatewayId)).toBeUndefined();
  });

  it('keeps retrying when the platform presents a certificate it no longer trusts, and says why', async () => {
    const { gatewayId, stateDir } = await harness.createGateway();
    // What a platform reinstalled from scratch looks like: a tunnel server CA we never saw.
    const file = join(stateDir, 'gateway.json');
    const state = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    const stranger = await createTunnelServerCa();
    await writeFile(file, JSON.stringify({ ...state, serverCaCertificatePem: stranger.certPem }), {
      mode: 0o600,
    });
    const agent = harness.spawnAgent(gatewayId, stateDir);
    await agent.waitForOutput(/the tunnel server's certificate is not trusted/, 8000);
    await agent.waitForOutput(/probably needs to enroll again/, 8000);
    expect(agent.child.exitCode).toBeNull();
    expect(agent.output()).not.toMatch(/deleted or revoked/);
    expect(harness.hub.live(gatewayId)).toBeUndefined();
  });

  it("refuses a certificate whose org is not its issuing CA's org", async () => {
    const orgB = await createOrgCa('org_b');
    harness.extraCas.push(orgB.certPem);
    // Issued by org_test's CA but claiming org_b: both CAs are trusted, the pairing is not.
    const { gatewayId, stateDir } = await harness.createGateway({ orgId: 'org_b' });
    const agent = harness.spawnAgent(gatewayId, stateDir);
    await agent.waitForOutput(/claims org org_b but was not issued by that org's CA/, 8000);
    expect(harness.hub.live(gatewayId)).toBeUndefined();
  });

  it('trusts an org CA added after the hub started', async () => {
    const late = await createOrgCa('org_late');
    harness.extraCas.push(late.certPem);
    const { gatewayId, stateDir } = await harness.createGateway({ ca: late, orgId: 'org_late' });
    const connected = harness.waitConnected(gatewayId, 8000);
    harness.spawnAgent(gatewayId, stateDir);
    expect((await connected).orgId).toBe('org_late');
  });

  it('refuses an unknown (deleted) gateway; its agent says so in one line and exits 3', async () => {
    const { gatewayId, stateDir } = await harness.createGateway({ register: false });
    const agent = harness.spawnAgent(gatewayId, stateDir);
    const { code } = await within(agent.exited, 8000, 'revoked agent exit');
    expect(code).toBe(3);
    const lines = agent.output().trim().split('\n');
    const revoked = lines.filter((line) => /deleted or revoked/.test(line));
    expect(revoked).toHaveLength(1);
    expect(revoked[0]).toMatch(
      new RegExp(
        `gateway "test-${gatewayId}" \\(${gatewayId}\\) was deleted or revoked on the platform ` +
          `\\(gateway ${gatewayId} is unknown, deleted or its certificate was replaced\\); ` +
          'stopping\\. To connect this host again, enroll it with a new token and a fresh --state-dir',
      ),
    );
    // Its last word: nothing after the verdict.
    expect(lines.at(-1)).toBe(revoked[0]);
    expect(harness.hub.live(gatewayId)).toBeUndefined();
  });

  it('keeps an agent retrying while identify() fails (platform database down)', async () => {
    const { gatewayId, stateDir } = await harness.createGateway();
    harness.identifyError = new Error('connect ECONNREFUSED 127.0.0.1:5432');
    try {
      const agent = harness.spawnAgent(gatewayId, stateDir);
      await agent.waitForOutput(/the platform cannot check gateways right now/, 8000);
      const calls = (): number => harness.identifyCalls.filter((id) => id === gatewayId).length;
      const before = calls();
      const retried = within(
        (async () => {
          while (calls() < before + 2) await sleep(50);
        })(),
        8000,
        'agent retries identify',
      );
      await retried;
      expect(agent.child.exitCode).toBeNull();
      expect(agent.output()).not.toMatch(/deleted or revoked/);
      const connected = harness.waitConnected(gatewayId, 8000);
      harness.identifyError = undefined;
      await connected;
    } finally {
      harness.identifyError = undefined;
    }
  });

  it('replaces a session when the same gateway connects again', async () => {
    const { gatewayId, stateDir } = await harness.createGateway();
    const first = harness.waitConnected(gatewayId, 8000);
    const a = harness.spawnAgent(gatewayId, stateDir);
    const firstLive = await first;
    const replaced = within(
      new Promise<string>((resolveWait) => {
        harness.hub.on('disconnected', (id, _org, reason) => {
          if (id === gatewayId) resolveWait(reason);
        });
      }),
      8000,
      'replacement',
    );
    const b = harness.spawnAgent(gatewayId, stateDir);
    expect(await replaced).toMatch(/replaced/);
    const current = harness.hub.live(gatewayId);
    expect(current).toBeDefined();
    expect(current).not.toBe(firstLive);
    // The evicted agent says why and backs off instead of evicting the other one right away.
    await a.waitForOutput(/another agent connected with this gateway's identity/, 3000);
    await sleep(500);
    expect(harness.hub.live(gatewayId)).toBe(current);
    b.child.kill('SIGKILL');
    a.child.kill('SIGKILL');
  });
});

describe('tunnel failure detection and recovery', () => {
  let harness: TunnelHarness;
  let echo: EchoServer;
  withTunnelHarness((suite) => ({ harness, echo } = suite));

  it('notices a SIGKILLed gateway within 1 s', async () => {
    const agent = await harness.startGateway();
    const disconnected = harness.waitDisconnected(agent.gatewayId, 3000);
    const killedAt = performance.now();
    agent.child.kill('SIGKILL');
    await disconnected;
    const elapsed = performance.now() - killedAt;
    expect(elapsed).toBeLessThan(1000);
  });

  it('declares a SIGSTOPped gateway dead within 1.5 s and takes it back after SIGCONT', async () => {
    const agent = await harness.startGateway(['--allow', `127.0.0.1:${echo.port}`]);
    const disconnected = harness.waitDisconnected(agent.gatewayId, 4000);
    const stoppedAt = performance.now();
    agent.child.kill('SIGSTOP');
    // While silent, an open cannot complete: it times out rather than hanging.
    await expect(
      harness.hub.openStream(agent.gatewayId, '127.0.0.1', echo.port, { timeoutMs: 200 }),
    ).rejects.toMatchObject({ reason: 'timeout' });
    const reason = await disconnected;
    const elapsed = performance.now() - stoppedAt;
    expect(reason).toMatch(/no frame/);
    expect(elapsed).toBeLessThan(1500);
    expect(harness.hub.live(agent.gatewayId)).toBeUndefined();

    const back = harness.waitConnected(agent.gatewayId, 8000);
    agent.child.kill('SIGCONT');
    const live = await back;
    expect(live.draining).toBe(false);
    const stream = await harness.hub.openStream(agent.gatewayId, '127.0.0.1', echo.port);
    expect((await roundTrip(stream, Buffer.from('again'))).toString()).toBe('again');
  });

  it('reconnects by itself after a platform restart', async () => {
    const agent = await harness.startGateway();
    await harness.restartHub(300);
    await harness.waitConnected(agent.gatewayId, 8000);
    await agent.waitForOutput(/reconnected: tunnel up/, 2000);
  });

  it("drops the tunnel at once on disconnect(); the deleted gateway's agent exits 3", async () => {
    const agent = await harness.startGateway(['--allow', `127.0.0.1:${echo.port}`]);
    const stream = await harness.hub.openStream(agent.gatewayId, '127.0.0.1', echo.port);
    const streamClosed = within(
      new Promise<void>((resolveClose) => stream.on('close', () => resolveClose())),
      1000,
      'open stream cut',
    );
    stream.on('error', () => undefined);
    const disconnected = harness.waitDisconnected(agent.gatewayId, 200);
    harness.records.delete(agent.gatewayId);
    expect(harness.hub.disconnect(agent.gatewayId, 'gateway deleted')).toBe(true);
    expect(harness.hub.live(agent.gatewayId)).toBeUndefined();
    expect(await disconnected).toBe('gateway deleted');
    await streamClosed;
    const { code } = await within(agent.exited, 3000, 'deleted agent exit');
    expect(code).toBe(3);
    expect(agent.output()).toMatch(/was deleted or revoked on the platform \(gateway deleted\)/);
    expect(harness.hub.live(agent.gatewayId)).toBeUndefined();
  });
});

describe('quiet tunnels', () => {
  let harness: TunnelHarness;
  // A wide gap between quiet (2 × 100 ms + rtt) and dead (3 s) makes the short freeze below
  // land between the two however loaded the machine is.
  withTunnelHarness((suite) => ({ harness } = suite), {
    keepaliveMs: 100,
    deadAfterMs: 3000,
    echo: false,
  });

  it('announces a frozen gateway as quiet, and heard from again when it resumes, without a reconnect', async () => {
    const agent = await harness.startGateway();
    const events: { quiet: boolean; silentMs: number; at: number }[] = [];
    const heardAgain = new Promise<void>((resolve) => {
      harness.hub.on('quiet', (live, quiet, silentMs) => {
        if (live.gatewayId !== agent.gatewayId) return;
        events.push({ quiet, silentMs, at: performance.now() });
        if (!quiet) resolve();
      });
    });
    let disconnected = false;
    harness.hub.on('disconnected', (id) => {
      if (id === agent.gatewayId) disconnected = true;
    });
    const session = harness.hub.live(agent.gatewayId);
    // Idle with keepalives flowing: never quiet.
    await sleep(600);
    expect(events).toEqual([]);

    const stoppedAt = performance.now();
    agent.child.kill('SIGSTOP');
    await sleep(1200);
    agent.child.kill('SIGCONT');
    await within(heardAgain, 3000, 'heard from again');

    expect(events.map((e) => e.quiet)).toEqual([true, false]);
    const [wentQuiet] = events;
    expect(wentQuiet?.silentMs).toBeGreaterThanOrEqual(200);
    expect((wentQuiet?.at ?? Infinity) - stoppedAt).toBeLessThan(1200);
    expect(disconnected).toBe(false);
    expect(harness.hub.live(agent.gatewayId)).toBe(session);
  });

  it('an open that may give up fails as quiet when the tunnel goes quiet; one that may not keeps waiting', async () => {
    const echo = await startEchoServer();
    const agent = await harness.startGateway(['--allow', `127.0.0.1:${echo.port}`]);
    try {
      const stoppedAt = performance.now();
      agent.child.kill('SIGSTOP');
      const patient = harness.hub.openStream(agent.gatewayId, '127.0.0.1', echo.port, {
        timeoutMs: 2500,
      });
      const patientOutcome = patient.then(
        () => 'opened',
        (err: { reason?: string }) => err.reason,
      );
      await expect(
        harness.hub.openStream(agent.gatewayId, '127.0.0.1', echo.port, {
          timeoutMs: 2500,
          abandonWhenQuiet: true,
        }),
      ).rejects.toMatchObject({ reason: 'quiet' });
      // Quiet comes after two keepalive rounds (100 ms here), long before the 2.5 s timeout.
      expect(performance.now() - stoppedAt).toBeLessThan(1500);
      const pending = await Promise.race([patientOutcome, sleep(50).then(() => 'pending')]);
      expect(pending).toBe('pending');
      agent.child.kill('SIGCONT');
      // Resumed before the 3 s dead threshold: the patient open completes.
      const stream = await patient;
      expect((await roundTrip(stream, Buffer.from('late'))).toString()).toBe('late');
    } finally {
      agent.child.kill('SIGCONT');
      await echo.close();
    }
  });
});

describe('platform stalls', () => {
  let harness: TunnelHarness;
  withTunnelHarness((suite) => ({ harness } = suite), { echo: false });

  it('a platform event-loop stall longer than deadAfterMs neither drops nor quiets a live gateway', async () => {
    const agent = await harness.startGateway();
    const session = harness.hub.live(agent.gatewayId);
    const events: string[] = [];
    harness.hub.on('quiet', (live, quiet) => {
      if (live.gatewayId === agent.gatewayId) events.push(quiet ? 'quiet' : 'heard');
    });
    harness.hub.on('disconnected', (id, _org, reason) => {
      if (id === agent.gatewayId) events.push(`disconnected: ${reason}`);
    });
    await sleep(300);
    // A long synchronous task on the platform (the gateway keeps answering; we cannot read).
    const until = Date.now() + 1300;
    while (Date.now() < until) {
      // busy
    }
    await sleep(400);
    expect(events).toEqual([]);
    expect(harness.hub.live(agent.gatewayId)).toBe(session);
  });
});
