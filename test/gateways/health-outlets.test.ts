/**
 * One health truth (issue 10): the same gateway reads the same through every outlet: the
 * gateways API (one and list), the pool detail and list, selection candidates (pool and pinned),
 * failover error texts, Kubernetes auth's outage check (referenceHealth), the event stream's
 * snapshot and /metrics. Real agents are put in each state; one table drives every assertion.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGatewayKeyAndCsr } from '../../src/server/gateways/pki.js';
import { NoGatewayAvailableError } from '../../src/server/pools/failover.js';
import { AgentFleet, type RunningAgent } from '../helpers/gateway-agent.js';
import {
  api,
  bootstrap,
  DRIVERS,
  issueTestLicense,
  startTestPlatform,
  waitFor,
  type Account,
  type TestPlatform,
} from '../helpers/platform.js';
import { freePort, startEchoServer } from '../tunnel/harness.js';

type CaseName =
  'never-connected' | 'healthy' | 'draining' | 'unreachable' | 'degraded' | 'quiet' | 'suspect';

interface Expected {
  /** As a gateway outside any pool reads (no health-check target applies). */
  gateway: string;
  /** As a member of its pool reads. */
  member: string;
  selectable: boolean;
  /** Why a selectable member is a last resort. */
  lastResort: RegExp | null;
  /** Why an unselectable one is not (member view; failover and outage texts quote it). */
  reason: RegExp | null;
}

const TABLE: Record<CaseName, Expected> = {
  'never-connected': {
    gateway: 'never-connected',
    member: 'never-connected',
    selectable: false,
    lastResort: null,
    reason: /^never-connected$/,
  },
  healthy: {
    gateway: 'healthy',
    member: 'healthy',
    selectable: true,
    lastResort: null,
    reason: null,
  },
  draining: {
    gateway: 'draining',
    member: 'draining',
    selectable: false,
    lastResort: null,
    reason: /^draining$/,
  },
  unreachable: {
    gateway: 'unreachable',
    member: 'unreachable',
    selectable: false,
    lastResort: null,
    reason: /^unreachable$/,
  },
  degraded: {
    gateway: 'healthy',
    member: 'degraded',
    selectable: false,
    lastResort: null,
    reason: /^cannot reach 127\.0\.0\.1:\d+: /,
  },
  quiet: {
    gateway: 'healthy',
    member: 'healthy',
    selectable: true,
    lastResort: /^tunnel quiet for \d+ ms/,
    reason: null,
  },
  suspect: {
    gateway: 'healthy',
    member: 'healthy',
    selectable: true,
    lastResort: /^recent failure: .*; a last resort until /,
    reason: null,
  },
};
const CASES = Object.keys(TABLE) as CaseName[];

describe.each(DRIVERS)('one health truth through every outlet (%s)', (driver) => {
  let tp: TestPlatform;
  let admin: Account;
  let echo: { port: number; close: () => Promise<void> };
  let closedPort: number;
  const fleet = new AgentFleet();
  const ids = {} as Record<CaseName, { gatewayId: string; poolId: string; name: string }>;
  const agents = {} as Partial<Record<CaseName, RunningAgent>>;

  beforeAll(async () => {
    // A long deadAfter keeps a stopped agent quiet (not yet unreachable) while every outlet is read.
    tp = await startTestPlatform(driver, {
      env: { GATEPOOL_ENROLL_RATE_LIMIT: '1000', GATEPOOL_DEAD_AFTER_MS: '10000' },
    });
    admin = await bootstrap(tp);
    await admin.client.put('/api/v1/license', {
      key: await issueTestLicense({ plan: 'enterprise', org: admin.orgId }),
    });
    echo = await startEchoServer();
    closedPort = await freePort();
    // One at a time: a burst of enrollments and polls would only measure the machine's load.
    for (const c of CASES) {
      const pool = await admin.client.post('/api/v1/gateway-pools', {
        name: `case-${c}`,
        ...(c === 'degraded' ? { healthCheckTarget: `127.0.0.1:${closedPort}` } : {}),
      });
      expect(pool.status).toBe(201);
      const token = await admin.client.post('/api/v1/gateways/enrollment-tokens', {
        poolIds: [`case-${c}`],
      });
      const name = `gw-${c}`;
      ids[c] = { gatewayId: '', poolId: pool.body.id as string, name };
      if (c === 'never-connected') {
        const { csrPem } = await createGatewayKeyAndCsr(name);
        const res = await api(tp).post('/api/v1/gateways/enroll', {
          token: token.body.token,
          name,
          csr: csrPem,
        });
        expect(res.status).toBe(201);
        ids[c].gatewayId = res.body.gatewayId as string;
        continue;
      }
      agents[c] = await fleet.start({
        platformUrl: tp.url,
        token: token.body.token,
        name,
        allow: [`127.0.0.1:${echo.port}`, `127.0.0.1:${closedPort}`],
      });
    }
    const connected = await waitFor(
      async () => {
        const items = (await admin.client.get('/api/v1/gateways?limit=200')).body.items as
          { id: string; name: string; connectedSince: string | null }[] | undefined;
        const up = items?.filter((g) => g.connectedSince !== null) ?? [];
        return up.length === Object.keys(agents).length ? up : undefined;
      },
      40_000,
      'every agent connected',
    );
    for (const g of connected) {
      const c = CASES.find((k) => ids[k].name === g.name) as CaseName;
      ids[c].gatewayId = g.id;
    }
  }, 90_000);
  afterAll(async () => {
    await fleet.close();
    await echo?.close();
    await tp?.close();
  });

  it('every outlet reads the same health for the same gateway', async () => {
    const runtime = tp.platform.ctx.poolRuntime;
    const directory = tp.platform.ctx.directory;
    const orgId = admin.orgId;

    // Put each gateway in its state.
    expect(
      (await admin.client.post(`/api/v1/gateways/${ids.draining.gatewayId}/drain`)).body,
    ).toMatchObject({ health: 'draining', draining: true });
    agents.unreachable?.kill();
    await waitFor(
      async () =>
        (await admin.client.get(`/api/v1/gateways/${ids.unreachable.gatewayId}`)).body.health ===
        'unreachable',
      5000,
      'unreachable',
    );
    await waitFor(
      async () =>
        (await admin.client.get('/api/v1/gateway-pools/case-degraded')).body.members[0].health ===
        'degraded',
      10_000,
      'degraded',
    );
    agents.quiet?.child.kill('SIGSTOP');
    await waitFor(
      () => runtime.candidatesFor(orgId, { gatewayPoolId: ids.quiet.poolId }).members[0]?.quiet,
      5000,
      'quiet',
    );
    // A real failed open marks the member suspect (its target port is closed).
    await expect(
      runtime.run(
        orgId,
        { gatewayPoolId: ids.suspect.poolId },
        { host: '127.0.0.1', port: closedPort },
        async () => undefined,
      ),
    ).rejects.toBeInstanceOf(NoGatewayAvailableError);

    // Read every outlet.
    const list = (await admin.client.get('/api/v1/gateways?limit=200')).body.items as {
      id: string;
      health: string;
      lastResort: string | null;
    }[];
    const poolList = (await admin.client.get('/api/v1/gateway-pools?limit=200')).body.items as {
      name: string;
      health: string;
      healthyMemberCount: number;
    }[];
    const snapshot = await runtime.healthSnapshot(orgId);
    const metrics = await (await fetch(`${tp.url}/metrics`)).text();

    for (const c of CASES) {
      const want = TABLE[c];
      const { gatewayId, poolId, name } = ids[c];
      const at = `${c}:`;
      // Gateway-level outlets: no pool health check applies.
      const one = (await admin.client.get(`/api/v1/gateways/${gatewayId}`)).body;
      expect(one.health, `${at} GET gateway`).toBe(want.gateway);
      const listed = list.find((g) => g.id === gatewayId);
      expect(listed?.health, `${at} gateway list`).toBe(want.gateway);
      const snapGw = snapshot.gateways.find((g) => g.id === gatewayId);
      expect(snapGw?.health, `${at} snapshot gateway`).toBe(want.gateway);
      for (const lastResort of [one.lastResort, listed?.lastResort, snapGw?.lastResort]) {
        if (want.lastResort)
          expect(lastResort, `${at} gateway lastResort`).toMatch(want.lastResort);
        else expect(lastResort, `${at} gateway lastResort`).toBeNull();
      }
      const pinned = runtime.candidatesFor(orgId, { gatewayId }).members[0];
      expect(pinned?.health, `${at} pinned candidate`).toBe(want.gateway);
      const pinnedOutage = await runtime.referenceHealth(orgId, { gatewayId });
      expect(pinnedOutage.usable, `${at} pinned referenceHealth`).toBe(want.gateway === 'healthy');

      // Member-level outlets.
      const detail = (await admin.client.get(`/api/v1/gateway-pools/case-${c}`)).body;
      const member = detail.members[0];
      expect(member.health, `${at} pool detail`).toBe(want.member);
      if (want.reason) expect(member.healthReason, `${at} healthReason`).toMatch(want.reason);
      else expect(member.healthReason, `${at} healthReason`).toBeNull();
      if (want.lastResort)
        expect(member.lastResort, `${at} member lastResort`).toMatch(want.lastResort);
      else expect(member.lastResort, `${at} member lastResort`).toBeNull();
      const healthyCount = want.selectable ? 1 : 0;
      const poolHealth = want.selectable ? 'healthy' : 'down';
      expect(detail, `${at} pool detail counts`).toMatchObject({
        healthyMemberCount: healthyCount,
        health: poolHealth,
      });
      expect(
        poolList.find((p) => p.name === `case-${c}`),
        `${at} pool list`,
      ).toMatchObject({
        healthyMemberCount: healthyCount,
        health: poolHealth,
      });
      const snapPool = snapshot.pools.find((p) => p.id === poolId);
      expect(snapPool, `${at} snapshot pool`).toMatchObject({
        health: poolHealth,
        healthyMemberCount: healthyCount,
        members: [{ gatewayId, health: want.member }],
      });
      if (want.reason) expect(snapPool?.members[0]?.reason).toMatch(want.reason);
      const candidate = runtime.candidatesFor(orgId, { gatewayPoolId: poolId }).members[0];
      expect(candidate, `${at} candidate`).toMatchObject({
        health: want.member,
        healthy: want.selectable,
      });
      if (c === 'quiet') expect(candidate?.quiet).toBe(true);
      if (c === 'suspect') expect(candidate?.suspectUntil).toBeGreaterThan(Date.now());
      const outage = await runtime.referenceHealth(orgId, { gatewayPoolId: poolId });
      expect(outage.usable, `${at} referenceHealth`).toBe(want.selectable);
      if (!want.selectable) {
        expect(outage.message).toContain(`${name}: `);
        // Failover errors name each member with the same words.
        const err = await runtime
          .run(
            orgId,
            { gatewayPoolId: poolId },
            { host: '127.0.0.1', port: echo.port },
            async () => undefined,
          )
          .catch((e: unknown) => e);
        expect(err, `${at} failover`).toBeInstanceOf(NoGatewayAvailableError);
        const text = (err as Error).message;
        expect(text).toContain(`gateway pool "case-${c}": no healthy member (${name}: `);
        const quoted = text.slice(text.indexOf(`${name}: `) + name.length + 2, -1);
        expect(quoted, `${at} failover reason`).toMatch(want.reason as RegExp);
        expect(outage.message).toContain(`${name}: ${quoted}`);
      }
    }

    // Metrics count gateways by the same gateway-level health.
    const byHealth = new Map<string, number>();
    for (const c of CASES)
      byHealth.set(TABLE[c].gateway, (byHealth.get(TABLE[c].gateway) ?? 0) + 1);
    for (const health of ['healthy', 'draining', 'unreachable', 'never-connected']) {
      expect(metrics, `metrics ${health}`).toContain(
        `gatepool_gateways{health="${health}"} ${byHealth.get(health) ?? 0}\n`,
      );
    }
    expect(
      directory.healthOf({ orgId, gatewayId: ids.quiet.gatewayId, everConnected: true }).health,
    ).toBe('healthy');
  }, 60_000);
});
