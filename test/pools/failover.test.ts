/**
 * Pool failover with real gateway processes (issue 4): three members, a loopback echo target,
 * a steady stream-opening load, and members killed, stopped or drained underneath it.
 * Runs on both drivers: membership, transitions and audit entries are written through each.
 */
import type { Duplex } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { NoGatewayAvailableError, type FailoverOptions } from '../../src/server/pools/failover.js';
import { AgentFleet, type RunningAgent } from '../helpers/gateway-agent.js';
import {
  bootstrap,
  DRIVERS,
  issueTestLicense,
  startTestPlatform,
  waitFor,
  type Account,
  type TestPlatform,
} from '../helpers/platform.js';
import { freePort, roundTrip, sleep, startEchoServer, within } from '../tunnel/harness.js';

interface Member {
  agent: RunningAgent;
  id: string;
  name: string;
}

describe.each(DRIVERS)('pool failover with three real gateways (%s)', (driver) => {
  let tp: TestPlatform;
  let admin: Account;
  let echo: { port: number; close: () => Promise<void> };
  let fleet: AgentFleet;
  let poolId: string;
  let members: Member[];
  let round = 0;

  beforeAll(async () => {
    // Each test enrolls three fresh agents from 127.0.0.1: more than the default 30 a minute.
    tp = await startTestPlatform(driver, { env: { GATEPOOL_ENROLL_RATE_LIMIT: '1000' } });
    admin = await bootstrap(tp);
    await admin.client.put('/api/v1/license', {
      key: await issueTestLicense({ plan: 'enterprise', org: admin.orgId }),
    });
    echo = await startEchoServer();
  });
  afterAll(async () => {
    await echo?.close();
    await tp?.close();
  });

  /** A fresh pool of three connected members per test. */
  async function startPool(
    opts: { healthCheckTarget?: string; allow?: (i: number) => string[] } = {},
  ) {
    round += 1;
    fleet = new AgentFleet();
    const pool = await admin.client.post('/api/v1/gateway-pools', {
      name: `ha-${round}`,
      ...(opts.healthCheckTarget ? { healthCheckTarget: opts.healthCheckTarget } : {}),
    });
    poolId = pool.body.id as string;
    const token = async () =>
      (await admin.client.post('/api/v1/gateways/enrollment-tokens', { poolIds: [poolId] })).body
        .token as string;
    const agents = await Promise.all(
      [0, 1, 2].map(async (i) =>
        fleet.start({
          platformUrl: tp.url,
          token: await token(),
          name: `ha${round}-m${i}`,
          allow: opts.allow?.(i) ?? [`127.0.0.1:${echo.port}`],
        }),
      ),
    );
    const detail = await waitFor(
      async () => {
        const res = await admin.client.get(`/api/v1/gateway-pools/${poolId}`);
        return res.body.members?.filter(
          (m: { health: string }) => m.health !== 'never-connected' && m.health !== 'unreachable',
        ).length === 3
          ? res.body
          : undefined;
      },
      20_000,
      'three members connected',
    );
    members = agents.map((agent) => {
      const m = detail.members.find((x: { name: string }) => x.name === agent.name);
      return { agent, id: m.id as string, name: agent.name };
    });
  }
  afterEach(async () => fleet?.close());

  const echoOp = async (stream: Duplex) => {
    const payload = Buffer.alloc(1024, 7);
    const back = await roundTrip(stream, payload, 5000);
    if (!back.equals(payload)) throw new Error('echo mismatch');
  };
  /** An echo that stays open ~20 ms, so some are surely in flight when a member dies. */
  const slowEchoOp = async (stream: Duplex) => {
    const half = Buffer.alloc(512, 9);
    const back: Buffer[] = [];
    const done = new Promise<void>((resolve, reject) => {
      stream.on('data', (c: Buffer) => back.push(c));
      stream.on('end', resolve);
      stream.on('error', reject);
    });
    // The member may die during the pause: keep that rejection handled until it is awaited.
    void done.catch(() => undefined);
    stream.write(half);
    await sleep(20);
    stream.end(half);
    await within(done, 5000, 'slow echo');
    if (Buffer.concat(back).length !== 1024) throw new Error('echo mismatch');
  };

  /**
   * Runs `workers` concurrent loops of pool operations until `stop` resolves. An operation that
   * could not get a stream is an open failure (must be zero); one that broke after its gateway
   * answered 200 is `interrupted` (the kill landed mid-operation; never retried, by design).
   */
  async function load(
    workers: number,
    stop: Promise<void>,
    runOpts: FailoverOptions = {},
    op: (stream: Duplex, member: { gatewayId: string }) => Promise<void> = echoOp,
  ) {
    let done = false;
    void stop.then(() => (done = true));
    const servedBy = new Map<string, number>();
    const openFailures: Error[] = [];
    let interrupted = 0;
    let ok = 0;
    let failovers = 0;
    let rerun = 0;
    await Promise.all(
      Array.from({ length: workers }, async () => {
        while (!done) {
          try {
            const served = await tp.platform.ctx.poolRuntime.run(
              admin.orgId,
              { gatewayPoolId: poolId },
              { host: '127.0.0.1', port: echo.port },
              op,
              runOpts,
            );
            ok += 1;
            failovers += served.attempts.length;
            rerun += served.attempts.filter((a) => a.reason === 'stream_broken').length;
            servedBy.set(served.gatewayName, (servedBy.get(served.gatewayName) ?? 0) + 1);
          } catch (err) {
            if (err instanceof NoGatewayAvailableError) openFailures.push(err);
            else interrupted += 1;
          }
        }
      }),
    );
    return { ok, openFailures, interrupted, servedBy, failovers, rerun };
  }

  it('SIGKILL of one member under load: zero failed stream opens; the member is dropped within 1 s', async () => {
    await startPool();
    const victim = members[0] as Member;
    // Selection works from memory: no database round trip per operation.
    await tp.platform.ctx.poolRuntime.ensureLoaded();
    const select = vi.spyOn(tp.platform.ctx.db, 'select');
    const stop = (async () => {
      await sleep(700);
      victim.agent.child.kill('SIGKILL');
      const killedAt = Date.now();
      await waitFor(
        async () =>
          (await admin.client.get(`/api/v1/gateways/${victim.id}`)).body.health === 'unreachable',
        2000,
        'victim unreachable',
      );
      expect(Date.now() - killedAt).toBeLessThan(1000);
      await sleep(1000);
    })();
    const result = await load(8, stop);
    await stop;
    const selectsDuringLoad = select.mock.calls.length;
    select.mockRestore();
    // The only reads are the test's own health polls (GET /gateways/:id: auth + row), not per operation.
    expect(selectsDuringLoad).toBeLessThan(result.ok / 10);
    expect(result.openFailures).toEqual([]);
    const metrics = await (await fetch(`${tp.url}/metrics`)).text();
    expect(metrics).toMatch(
      new RegExp(
        `gatepool_pool_selections_total\\{pool="ha-${round}",pool_id="${poolId}"\\} [1-9]`,
      ),
    );
    expect(metrics).toMatch(
      new RegExp(`gatepool_pool_healthy_members\\{pool="ha-${round}",pool_id="${poolId}"\\} 2`),
    );
    // Only operations already past their gateway's 200 on the victim can break: at most one per worker.
    expect(result.interrupted).toBeLessThanOrEqual(8);
    expect(result.ok).toBeGreaterThan(200);
    for (const m of members.slice(1)) expect(result.servedBy.get(m.name) ?? 0).toBeGreaterThan(50);
    const pool = (await admin.client.get(`/api/v1/gateway-pools/${poolId}`)).body;
    expect(pool).toMatchObject({ memberCount: 3, healthyMemberCount: 2, health: 'healthy' });
  });

  it('SIGKILL under load with an idempotent operation: zero failed operations, in-flight ones re-run', async () => {
    await startPool();
    const victim = members[0] as Member;
    // Kill while an echo is surely mid-way on the victim (a loaded machine may route around a
    // starved member for a while, so waiting a fixed time would not guarantee one).
    // Armed only after the warm-up: an operation that started on the victim earlier may have
    // finished long before the kill.
    let onVictim: (() => void) | undefined;
    const op = async (stream: Duplex, member: { gatewayId: string }) => {
      const echoing = slowEchoOp(stream);
      if (member.gatewayId === victim.id && onVictim) {
        setTimeout(onVictim, 5);
        onVictim = undefined;
      }
      await echoing;
    };
    const stop = (async () => {
      await sleep(300);
      const victimBusy = new Promise<void>((resolve) => (onVictim = resolve));
      await within(victimBusy, 10_000, 'an operation on the victim');
      victim.agent.child.kill('SIGKILL');
      await sleep(1200);
    })();
    // The echo is safe to repeat, so the caller lets an interrupted one run again elsewhere.
    const result = await load(8, stop, { retryOperation: () => true }, op);
    await stop;
    expect(result.openFailures).toEqual([]);
    expect(result.interrupted).toBe(0);
    // Operations were in flight on the victim when it died, and were re-run on a survivor.
    expect(result.rerun).toBeGreaterThan(0);
    expect(result.ok).toBeGreaterThan(100);
  });

  it('SIGSTOP of one member: operations keep succeeding and it is excluded within 1.5 s', async () => {
    await startPool();
    const victim = members[1] as Member;
    let excludedAfter = Infinity;
    const stop = (async () => {
      await sleep(500);
      victim.agent.child.kill('SIGSTOP');
      const stoppedAt = Date.now();
      await waitFor(
        async () =>
          (await admin.client.get(`/api/v1/gateway-pools/${poolId}`)).body.healthyMemberCount === 2,
        3000,
        'stopped member excluded',
      );
      excludedAfter = Date.now() - stoppedAt;
      await sleep(800);
    })();
    try {
      const result = await load(6, stop);
      await stop;
      expect(excludedAfter).toBeLessThan(1500);
      expect(result.openFailures).toEqual([]);
      expect(result.interrupted).toBeLessThanOrEqual(6);
      expect(result.ok).toBeGreaterThan(100);
    } finally {
      victim.agent.child.kill('SIGCONT');
    }
  });

  it('SIGSTOP of one member: it leaves selection once its tunnel is quiet, under 1 s and before it is unreachable', async () => {
    await startPool();
    const victim = members[2] as Member;
    const hub = tp.platform.ctx.directory.hub;
    const pools = tp.platform.ctx.poolRuntime;
    const target = { host: '127.0.0.1', port: echo.port };
    type Seen = {
      afterMs: number;
      state: ReturnType<typeof pools.memberState>;
      runs: Promise<{ gatewayName: string; attempts: { gatewayName: string }[] }[]>;
    };
    let stoppedAt = 0;
    const quiet = new Promise<Seen>((resolve) => {
      hub.on('quiet', function onQuiet(live, isQuiet) {
        if (live.gatewayId !== victim.id || !isQuiet) return;
        hub.off('quiet', onQuiet);
        // In the same turn as the announcement: what the pool shows and what it picks now.
        const state = pools.memberState(
          { orgId: admin.orgId, healthCheckTarget: null },
          { gatewayId: victim.id, everConnected: true },
        );
        const runs = Promise.all(
          Array.from({ length: 12 }, () =>
            pools.run(admin.orgId, { gatewayPoolId: poolId }, target, echoOp),
          ),
        );
        resolve({ afterMs: Date.now() - stoppedAt, state, runs });
      });
    });
    let unreachableAfter = Infinity;
    hub.on('disconnected', function onGone(gatewayId) {
      if (gatewayId !== victim.id) return;
      hub.off('disconnected', onGone);
      unreachableAfter = Date.now() - stoppedAt;
    });
    try {
      await sleep(300);
      victim.agent.child.kill('SIGSTOP');
      stoppedAt = Date.now();
      const seen = await within(quiet, 3000, 'victim quiet');
      expect(seen.afterMs).toBeLessThan(1000);
      expect(seen.state).toMatchObject({ health: 'healthy', quiet: true });
      expect(seen.state.lastResort).toMatch(/^tunnel quiet for \d+ ms/);
      const served = await within(seen.runs, 5000, 'runs while the victim is quiet');
      for (const s of served) {
        expect(s.gatewayName).not.toBe(victim.name);
        expect(s.attempts.map((a) => a.gatewayName)).not.toContain(victim.name);
      }
      await waitFor(async () => unreachableAfter < Infinity, 3000, 'victim unreachable');
      expect(unreachableAfter).toBeGreaterThan(seen.afterMs);
      const metrics = await (await fetch(`${tp.url}/metrics`)).text();
      expect(metrics).toMatch(/^gatepool_tunnel_quiet_total [1-9]/m);
    } finally {
      victim.agent.child.kill('SIGCONT');
    }
    // Back: the agent reconnects and the pool shows it plainly healthy, not a last resort.
    const back = await waitFor(
      async () => {
        const detail = (await admin.client.get(`/api/v1/gateway-pools/${poolId}`)).body;
        const m = detail.members.find((x: { id: string }) => x.id === victim.id);
        return m.health === 'healthy' && m.lastResort === null ? m : undefined;
      },
      15_000,
      'victim healthy again',
    );
    expect(back.healthReason).toBeNull();
    // Its new session takes traffic again (the pool's cached view of sessions follows reconnects).
    let servedByVictim = false;
    for (let i = 0; i < 300 && !servedByVictim; i++) {
      const served = await pools.run(admin.orgId, { gatewayPoolId: poolId }, target, echoOp);
      servedByVictim = served.gatewayName === victim.name;
    }
    expect(servedByVictim).toBe(true);
  });

  /** Writes `data` and waits until as many bytes came back, leaving the stream open. */
  function echoBack(stream: Duplex, data: Buffer): Promise<void> {
    return within(
      new Promise<void>((resolve, reject) => {
        let got = 0;
        const onData = (chunk: Buffer): void => {
          got += chunk.length;
          if (got < data.length) return;
          stream.off('data', onData);
          stream.off('error', reject);
          resolve();
        };
        stream.on('data', onData);
        stream.on('error', reject);
        stream.write(data);
      }),
      5000,
      'first half echoed',
    );
  }

  /**
   * An echo in two halves; on the victim, the member is SIGSTOPped between them (once the first
   * half came back, so the stream is surely open and carrying data), leaving the second half
   * unanswered until it is resumed.
   */
  function stopMidOperation(victim: Member) {
    let stoppedAt = 0;
    const op = async (stream: Duplex, member: { gatewayId: string }) => {
      const half = Buffer.alloc(512, 5);
      await echoBack(stream, half);
      if (member.gatewayId === victim.id && stoppedAt === 0) {
        victim.agent.child.kill('SIGSTOP');
        stoppedAt = Date.now();
      }
      const second = await roundTrip(stream, half, 5000);
      if (!second.equals(half)) throw new Error('echo mismatch');
    };
    return { op, stoppedAt: () => stoppedAt };
  }

  /** Runs `op` through the pool until a run has landed on the victim (bounded). */
  async function runUntilVictim(
    victim: Member,
    op: (stream: Duplex, member: { gatewayId: string }) => Promise<void>,
    opts: FailoverOptions,
  ) {
    const target = { host: '127.0.0.1', port: echo.port };
    for (let i = 0; i < 60; i++) {
      const served = await tp.platform.ctx.poolRuntime.run(
        admin.orgId,
        { gatewayPoolId: poolId },
        target,
        op,
        opts,
      );
      const onVictim =
        served.gatewayName === victim.name ||
        served.attempts.some((a) => a.gatewayName === victim.name);
      if (onVictim) return served;
    }
    throw new Error('no run landed on the victim in 60 tries');
  }

  it('SIGSTOP mid-operation: a repeatable operation is cut when the member goes quiet and re-run elsewhere, before it is unreachable', async () => {
    await startPool();
    const victim = members[0] as Member;
    const stop = stopMidOperation(victim);
    try {
      const served = await runUntilVictim(victim, stop.op, { retryOperation: () => false });
      const tookMs = Date.now() - stop.stoppedAt();
      expect(served.gatewayName).not.toBe(victim.name);
      // Cut by the pool, not by the caller's predicate (which refuses everything here).
      expect(served.attempts).toEqual([
        expect.objectContaining({
          gatewayName: victim.name,
          reason: 'stream_broken',
          message: expect.stringMatching(/went quiet during the operation/),
        }),
      ]);
      // Quiet (~0.5 s), not dead (1 s): the operation did not wait for the member's death.
      expect(tookMs).toBeLessThan(950);
      const health = (await admin.client.get(`/api/v1/gateways/${victim.id}`)).body.health;
      expect(['healthy', 'unreachable']).toContain(health);
    } finally {
      victim.agent.child.kill('SIGCONT');
    }
  });

  it('SIGSTOP mid-operation: an operation not declared repeatable is not cut at quiet and completes once the member resumes', async () => {
    await startPool();
    const victim = members[1] as Member;
    const stop = stopMidOperation(victim);
    // Resume the member after it went quiet but well before it would be declared dead.
    const hub = tp.platform.ctx.directory.hub;
    let quietSeen = false;
    hub.on('quiet', function onQuiet(live, isQuiet) {
      if (live.gatewayId !== victim.id || !isQuiet) return;
      hub.off('quiet', onQuiet);
      quietSeen = true;
      setTimeout(() => victim.agent.child.kill('SIGCONT'), 100);
    });
    try {
      const served = await runUntilVictim(victim, stop.op, {});
      expect(quietSeen).toBe(true);
      expect(served).toMatchObject({ gatewayName: victim.name, attempts: [] });
    } finally {
      victim.agent.child.kill('SIGCONT');
    }
  });

  it('drain of one member: it gets no new streams while its open stream completes', async () => {
    await startPool();
    const drained = members[2] as Member;
    const hub = tp.platform.ctx.directory.hub;
    const open = await hub.openStream(drained.id, '127.0.0.1', echo.port);
    expect((await admin.client.post(`/api/v1/gateways/${drained.id}/drain`)).status).toBe(200);
    const result = await load(4, sleep(800));
    expect(result.openFailures).toEqual([]);
    expect(result.servedBy.get(drained.name)).toBeUndefined();
    expect((await roundTrip(open, Buffer.from('drained but finishing'))).toString()).toBe(
      'drained but finishing',
    );
    const detail = (await admin.client.get(`/api/v1/gateway-pools/${poolId}`)).body;
    expect(detail.members.find((m: { id: string }) => m.id === drained.id).health).toBe('draining');
  });

  it('all members dead: a clear error naming each member, and the pool degraded is audited', async () => {
    await startPool();
    for (const m of members) m.agent.child.kill('SIGKILL');
    await waitFor(
      async () =>
        (await admin.client.get(`/api/v1/gateway-pools/${poolId}`)).body.health === 'down',
      3000,
      'pool down',
    );
    const err = await tp.platform.ctx.poolRuntime
      .run(admin.orgId, { gatewayPoolId: poolId }, { host: '127.0.0.1', port: echo.port }, echoOp)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NoGatewayAvailableError);
    const message = (err as Error).message;
    for (const m of members) expect(message).toContain(`${m.name}: unreachable`);
    await waitFor(
      async () => {
        const audit = await admin.client.get(
          '/api/v1/audit-logs?event=gateway-pool.degraded&limit=20',
        );
        return audit.body.items.some(
          (e: { metadata: { poolId: string } }) => e.metadata.poolId === poolId,
        );
      },
      3000,
      'degraded audit',
    );
  });

  it('members retry a target one of them cannot reach and the final error lists every attempt', async () => {
    const down = await freePort();
    await startPool({ allow: () => [`127.0.0.1:${down}`] });
    const err = await tp.platform.ctx.poolRuntime
      .run(admin.orgId, { gatewayPoolId: poolId }, { host: '127.0.0.1', port: down }, echoOp)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NoGatewayAvailableError);
    const attempts = (err as NoGatewayAvailableError).attempts;
    expect(attempts).toHaveLength(3);
    expect(new Set(attempts.map((a) => a.gatewayName))).toEqual(
      new Set(members.map((m) => m.name)),
    );
    expect(
      attempts.every((a) => a.reason === 'unreachable' && /ECONNREFUSED/.test(a.message)),
    ).toBe(true);
  });

  it('health-check target: a member that cannot reach it is degraded, says why and is not selected', async () => {
    const target = `127.0.0.1:${echo.port}`;
    // Member 2 is not allowed to reach the target, so its probe fails.
    await startPool({ healthCheckTarget: target, allow: (i) => (i === 2 ? [] : [target]) });
    const blind = members[2] as Member;
    const detail = await waitFor(
      async () => {
        const res = await admin.client.get(`/api/v1/gateway-pools/${poolId}`);
        const m = res.body.members.find((x: { id: string }) => x.id === blind.id);
        return m?.health === 'degraded' ? res.body : undefined;
      },
      10_000,
      'blind member degraded',
    );
    const m = detail.members.find((x: { id: string }) => x.id === blind.id);
    expect(m.healthReason).toContain(`cannot reach ${target}`);
    expect(m.healthCheck).toMatchObject({ target, ok: false });
    expect(detail.healthyMemberCount).toBe(2);
    const result = await load(3, sleep(400));
    expect(result.servedBy.get(blind.name)).toBeUndefined();
    expect(result.openFailures).toEqual([]);
  });

  it('saving a health-check target the members cannot reach answers with a warning naming them', async () => {
    await startPool();
    // Outside every member's --allow rules (they allow only the echo server).
    const bad = await admin.client.patch(`/api/v1/gateway-pools/${poolId}`, {
      healthCheckTarget: '127.0.0.1:1',
    });
    expect(bad.status).toBe(200);
    expect(bad.body.warnings).toHaveLength(1);
    expect(bad.body.warnings[0]).toMatch(
      /^No connected member can reach the health-check target 127\.0\.0\.1:1 \(ha\d+-m\d: .*allow.*\): pool "ha-\d+" has no healthy member now/,
    );
    for (const m of members) expect(bad.body.warnings[0]).toContain(m.name);
    const good = await admin.client.patch(`/api/v1/gateway-pools/${poolId}`, {
      healthCheckTarget: `127.0.0.1:${echo.port}`,
    });
    expect(good.body.warnings).toEqual([]);
    // Other changes do not wait for checks, and warn of nothing.
    const renamed = await admin.client.patch(`/api/v1/gateway-pools/${poolId}`, {
      description: 'checked',
    });
    expect(renamed.body.warnings).toEqual([]);
  });

  it('a pinned gateway reference runs once on that gateway, without failover', async () => {
    await startPool();
    const pinned = members[0] as Member;
    const served = await tp.platform.ctx.poolRuntime.run(
      admin.orgId,
      { gatewayId: pinned.id },
      { host: '127.0.0.1', port: echo.port },
      echoOp,
    );
    expect(served.gatewayName).toBe(pinned.name);
    pinned.agent.child.kill('SIGKILL');
    await within(pinned.agent.exited, 5000, 'exit');
    await waitFor(
      async () =>
        (await admin.client.get(`/api/v1/gateways/${pinned.id}`)).body.health === 'unreachable',
      2000,
      'unreachable',
    );
    const err = await tp.platform.ctx.poolRuntime
      .run(admin.orgId, { gatewayId: pinned.id }, { host: '127.0.0.1', port: echo.port }, echoOp)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NoGatewayAvailableError);
    expect((err as NoGatewayAvailableError).message).toContain(pinned.name);
  });
});
