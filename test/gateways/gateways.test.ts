/**
 * Gateways end to end (issue 3): real `gatepool gateway start` processes enroll through the
 * API, keep a tunnel to the in-process platform, and carry streams to a loopback echo target.
 */
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatewayEnrollmentTokens } from '../../src/server/db/schema.js';
import { createGatewayKeyAndCsr } from '../../src/server/gateways/pki.js';
import { StreamOpenError } from '../../src/server/tunnel/errors.js';
import { AgentFleet, type RunningAgent } from '../helpers/gateway-agent.js';
import {
  bootstrap,
  createSecondOrg,
  DRIVERS,
  waitFor,
  startTestPlatform,
  type Account,
  type TestPlatform,
} from '../helpers/platform.js';
import { freePort, roundTrip, sleep, startEchoServer, within } from '../tunnel/harness.js';

describe.each(DRIVERS)('gateways (%s)', (driver) => {
  let tp: TestPlatform;
  let admin: Account;
  let echo: { port: number; close: () => Promise<void> };
  const fleet = new AgentFleet();

  beforeAll(async () => {
    tp = await startTestPlatform(driver);
    admin = await bootstrap(tp);
    echo = await startEchoServer();
  });
  afterAll(async () => {
    await fleet.close();
    await echo?.close();
    await tp?.close();
  });

  async function enrollmentToken(body: object = {}): Promise<string> {
    const res = await admin.client.post('/api/v1/gateways/enrollment-tokens', body);
    expect(res.status).toBe(201);
    return res.body.token as string;
  }

  /** Enrolls and connects a real agent; resolves once the API reports it healthy. */
  async function startGateway(
    name: string,
    extra: { allow?: string[]; labels?: string[]; extraArgs?: string[] } = {},
  ) {
    const agent = await fleet.start({
      platformUrl: tp.url,
      token: await enrollmentToken(),
      name,
      allow: extra.allow ?? [`127.0.0.1:${echo.port}`],
      labels: extra.labels,
      extraArgs: extra.extraArgs,
    });
    const gw = await waitFor(
      async () => {
        const list = await admin.client.get('/api/v1/gateways?limit=200');
        const found = list.body.items.find((g: { name: string }) => g.name === name);
        return found?.health === 'healthy' ? found : undefined;
      },
      15_000,
      `gateway ${name} healthy`,
    );
    return { agent, id: gw.id as string, view: gw };
  }

  const health = async (id: string) =>
    (await admin.client.get(`/api/v1/gateways/${id}`)).body.health as string;

  /** Milliseconds until the API reports `want` for the gateway (polled every 20 ms). */
  async function timeUntilHealth(id: string, want: string, limitMs: number): Promise<number> {
    const start = Date.now();
    await waitFor(async () => (await health(id)) === want, limitMs, `health ${want}`);
    return Date.now() - start;
  }

  it('enrolls a real agent, reports it healthy with version and labels, and carries a stream', async () => {
    const { id, view } = await startGateway('gw-basic', { labels: ['region=eu', 'tier=1'] });
    expect(view).toMatchObject({
      version: '0.1.0',
      labels: { region: 'eu', tier: '1' },
      draining: false,
    });
    expect(view.connectedSince).toEqual(expect.any(String));
    expect(view.lastSeenAt).toEqual(expect.any(String));
    const hc = await admin.client.post(`/api/v1/gateways/${id}/health-check`);
    expect(hc.body).toMatchObject({ ok: true, health: 'healthy' });
    expect(hc.body.rttMs).toBeGreaterThan(0);

    const stream = await tp.platform.ctx.directory.hub.openStream(id, '127.0.0.1', echo.port);
    const payload = Buffer.from('hello through the tunnel');
    expect((await roundTrip(stream, payload)).toString()).toBe(payload.toString());

    // The connection is recorded once the tunnel is up, not before health says so: wait for it.
    const wanted = ['gateway.enroll', 'gateway.connected', 'gateway.enrollment-token-create'];
    const events = await waitFor(
      async () => {
        const audit = await admin.client.get('/api/v1/audit-logs?event=gateway.*&limit=50');
        const seen: string[] = audit.body.items.map((e: { event: string }) => e.event);
        return wanted.every((w) => seen.includes(w)) ? seen : undefined;
      },
      5_000,
      'the connection in the audit log',
    );
    expect(events).toEqual(
      expect.arrayContaining([
        'gateway.enroll',
        'gateway.connected',
        'gateway.enrollment-token-create',
      ]),
    );

    const metrics = await (await fetch(`${tp.url}/metrics`)).text();
    expect(metrics).toMatch(/gatepool_gateways\{health="healthy"\} [1-9]/);
    expect(metrics).toMatch(/gatepool_tunnel_stream_opens_total\{result="ok"\} [1-9]/);
    await waitFor(
      async () =>
        /gatepool_tunnel_bytes_total\{direction="in"\} [1-9]/.test(
          await (await fetch(`${tp.url}/metrics`)).text(),
        ),
      3000,
      'bytes metric',
    );
  });

  it('refuses targets outside the allowlist and names why an allowed target is unreachable', async () => {
    const down = await freePort();
    const { id } = await startGateway('gw-allow', {
      allow: [`127.0.0.1:${echo.port}`, `127.0.0.1:${down}`],
    });
    const hub = tp.platform.ctx.directory.hub;
    const refused = await hub.openStream(id, '127.0.0.1', echo.port + 1).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(StreamOpenError);
    expect(refused).toMatchObject({ reason: 'refused', reachedTarget: false });
    const unreachable = await hub.openStream(id, '127.0.0.1', down).catch((e: unknown) => e);
    expect(unreachable).toMatchObject({ reason: 'unreachable', reachedTarget: false });
    expect((unreachable as StreamOpenError).gatewayReason).toMatch(/ECONNREFUSED/);
  });

  it('enrollment tokens are single use; expired, revoked and unknown tokens get one clear 401', async () => {
    const token = await enrollmentToken({ name: 'one-shot' });
    const first = await fleet.start({ platformUrl: tp.url, token, name: 'gw-once', allow: [] });
    await first.waitForOutput(/enrolled as gateway/, 15_000);
    const again = await fleet.start({ platformUrl: tp.url, token, name: 'gw-twice', allow: [] });
    expect((await within(again.exited, 15_000, 'reuse exit')).code).toBe(1);
    expect(again.output()).toMatch(/unknown, expired, revoked or already used/);

    const expired = await enrollmentToken();
    await tp.db
      .update(gatewayEnrollmentTokens)
      .set({ expiresAt: new Date(Date.now() - 1000) })
      .where(eq(gatewayEnrollmentTokens.orgId, admin.orgId));
    const late = await fleet.start({
      platformUrl: tp.url,
      token: expired,
      name: 'gw-late',
      allow: [],
    });
    expect((await within(late.exited, 15_000, 'expired exit')).code).toBe(1);
    expect(late.output()).toMatch(/unknown, expired, revoked or already used/);

    const revokable = await admin.client.post('/api/v1/gateways/enrollment-tokens', {});
    expect(
      (await admin.client.delete(`/api/v1/gateways/enrollment-tokens/${revokable.body.id}`)).status,
    ).toBe(204);
    const csr = '-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----';
    for (const t of [revokable.body.token, 'gpe_unknown']) {
      const res = await api(tp).post('/api/v1/gateways/enroll', { token: t, name: 'x', csr });
      expect(res.status).toBe(401);
      expect(res.body.error.code).toBe('invalid_enrollment_token');
    }
    const list = await admin.client.get('/api/v1/gateways/enrollment-tokens');
    const states = new Set(list.body.items.map((t: { state: string }) => t.state));
    expect(states).toEqual(new Set(['used', 'expired', 'revoked']));
    expect(JSON.stringify(list.body)).not.toContain('gpe_');
    // Pages, newest first, until nextCursor is null: every token exactly once.
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let i = 0; i < 50; i++) {
      const page = await admin.client.get(
        `/api/v1/gateways/enrollment-tokens?limit=2${cursor ? `&cursor=${cursor}` : ''}`,
      );
      expect(page.status).toBe(200);
      expect(page.body.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.items.map((t: { id: string }) => t.id));
      cursor = page.body.nextCursor as string | null;
      if (!cursor) break;
    }
    expect(seen).toEqual(list.body.items.map((t: { id: string }) => t.id));
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.length).toBeGreaterThan(2);
  });

  it('validates enrollment token input', async () => {
    for (const body of [
      { ttlSeconds: 30 },
      { ttlSeconds: 90_000 },
      { ttlSeconds: '60' },
      { poolIds: ['Not A Pool!'] },
      { extra: 1 },
    ]) {
      const res = await admin.client.post('/api/v1/gateways/enrollment-tokens', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
    }
    // A bad CSR is the caller's mistake: 400, and the token stays usable.
    const token = await enrollmentToken();
    const garbage = await api(tp).post('/api/v1/gateways/enroll', {
      token,
      name: 'csr-test',
      csr: 'not a csr',
    });
    expect(garbage.status).toBe(400);
    expect(garbage.body.error.message).toMatch(/^csr: /);
    const { csrPem } = await createGatewayKeyAndCsr('csr-test');
    expect(
      (await api(tp).post('/api/v1/gateways/enroll', { token, name: 'csr-test', csr: csrPem }))
        .status,
    ).toBe(201);
    const bad = await api(tp).post('/api/v1/gateways/enroll', {
      token: 'gpe_x',
      name: 'has space',
      csr: 'x',
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toContain('body.name');
  });

  it('SIGKILL: the API reports unreachable within 1 s and audits the transition', async () => {
    const { agent, id } = await startGateway('gw-kill');
    agent.child.kill('SIGKILL');
    const ms = await timeUntilHealth(id, 'unreachable', 3000);
    expect(ms).toBeLessThan(1000);
    await waitFor(
      async () => {
        const audit = await admin.client.get(
          `/api/v1/audit-logs?event=gateway.disconnected&limit=50`,
        );
        return audit.body.items.some(
          (e: { metadata: { gatewayId: string } }) => e.metadata.gatewayId === id,
        );
      },
      3000,
      'gateway.disconnected audit',
    );
    const hc = await admin.client.post(`/api/v1/gateways/${id}/health-check`);
    expect(hc.body).toMatchObject({ ok: false, health: 'unreachable' });
  });

  it('SIGSTOP: unreachable within 1.5 s, healthy again after SIGCONT', async () => {
    // A target that reads and never answers: the request is out, the reply is pending.
    const silent = net.createServer({ allowHalfOpen: true }, (socket) => socket.resume());
    silent.listen(0, '127.0.0.1');
    await once(silent, 'listening');
    const silentPort = (silent.address() as net.AddressInfo).port;
    const { agent, id } = await startGateway('gw-stop', {
      allow: [`127.0.0.1:${echo.port}`, `127.0.0.1:${silentPort}`],
    });
    const open = await tp.platform.ctx.directory.hub.openStream(id, '127.0.0.1', silentPort);
    // A stream on a tunnel that goes silent fails loudly; it never ends as if complete.
    const outcome = new Promise<string>((resolve) => {
      open.on('error', (err) => resolve(`error: ${err.message}`));
      open.on('end', () => resolve('end'));
      open.resume();
    });
    open.end(Buffer.from('request'));
    await sleep(100);
    agent.child.kill('SIGSTOP');
    try {
      expect(await timeUntilHealth(id, 'unreachable', 4000)).toBeLessThan(1500);
      expect(await within(outcome, 3000, 'stream outcome')).toMatch(
        /^error: tunnel to gateway .* lost/,
      );
    } finally {
      agent.child.kill('SIGCONT');
      silent.close();
    }
    await timeUntilHealth(id, 'healthy', 10_000);
  });

  it('drain through the API: no new streams, health draining; undrain restores', async () => {
    const { id } = await startGateway('gw-drain');
    const hub = tp.platform.ctx.directory.hub;
    const open = await hub.openStream(id, '127.0.0.1', echo.port);
    const drained = await admin.client.post(`/api/v1/gateways/${id}/drain`);
    expect(drained.status).toBe(200);
    expect(drained.body.health).toBe('draining');
    await waitFor(
      async () =>
        (await hub.openStream(id, '127.0.0.1', echo.port).catch((e: unknown) => e)) instanceof
        StreamOpenError,
      3000,
      'refusal while draining',
    );
    const refused = await hub.openStream(id, '127.0.0.1', echo.port).catch((e: unknown) => e);
    expect(refused).toMatchObject({ reason: 'draining' });
    // The stream opened before the drain still works.
    expect((await roundTrip(open, Buffer.from('still here'))).toString()).toBe('still here');
    // The answer is the state the request produced, not the one before the gateway confirmed.
    const undrained = await admin.client.post(`/api/v1/gateways/${id}/undrain`);
    expect(undrained.status).toBe(200);
    expect(undrained.body).toMatchObject({ health: 'healthy', draining: false });
    expect((await admin.client.get(`/api/v1/gateways/${id}`)).body).toMatchObject({
      health: 'healthy',
      draining: false,
    });
    const after = await waitFor(
      () => hub.openStream(id, '127.0.0.1', echo.port).catch(() => undefined),
      3000,
      'open after undrain',
    );
    after.destroy();
  });

  it('SIGTERM drains the agent: the open stream finishes, new ones are refused, exit 0', async () => {
    const { agent, id } = await startGateway('gw-term', { extraArgs: ['--drain-timeout', '10'] });
    const hub = tp.platform.ctx.directory.hub;
    const open = await hub.openStream(id, '127.0.0.1', echo.port);
    agent.child.kill('SIGTERM');
    await waitFor(
      async () => ['draining', 'unreachable'].includes(await health(id)),
      3000,
      'draining',
    );
    const refused = await hub.openStream(id, '127.0.0.1', echo.port).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(StreamOpenError);
    expect((await roundTrip(open, Buffer.from('finish me'))).toString()).toBe('finish me');
    expect((await within(agent.exited, 12_000, 'drained exit')).code).toBe(0);
  });

  it('PATCH renames and labels; DELETE drops the tunnel at once and refuses the certificate', async () => {
    const { agent, id } = await startGateway('gw-delete', { labels: ['zone=a'] });
    const patched = await admin.client.patch(`/api/v1/gateways/${id}`, {
      name: 'gw-renamed',
      labels: { zone: 'b', team: 'ops' },
    });
    expect(patched.status).toBe(200);
    // Text jsonb cannot store is the caller's mistake: 400 naming the rule, not a 500.
    for (const bad of [{ k: 'x\udfffy' }, { k: 'nul\u0000' }]) {
      const refused = await admin.client.patch(`/api/v1/gateways/${id}`, { labels: bad });
      expect(refused.status).toBe(400);
      expect(refused.body.error.message).toContain('invalid Unicode');
    }
    // A bad key: the map and the key are named, with the rule, not zod's "Invalid key in record".
    for (const key of ['', '-lead', 'sp ace']) {
      const refused = await admin.client.patch(`/api/v1/gateways/${id}`, {
        labels: { [key]: 'v' },
      });
      expect(refused.status).toBe(400);
      expect(refused.body.error.message).toBe(
        `Invalid request: body.labels: key "${key}": label keys are 1-63 characters: letters, digits, . _ / -`,
      );
    }
    expect(patched.body).toMatchObject({
      name: 'gw-renamed',
      labels: { zone: 'b', team: 'ops' },
      configuredLabels: { zone: 'b', team: 'ops' },
    });
    const { csrPem } = await createGatewayKeyAndCsr('dup');
    const dup = await api(tp).post('/api/v1/gateways/enroll', {
      token: await enrollmentToken(),
      name: 'gw-renamed',
      csr: csrPem,
    });
    expect(dup.status).toBe(409);
    expect(dup.body.error.message).toContain('"gw-renamed" already exists');
    // Names that differ only in case would be told apart by nobody (logs, pools, audit filter).
    const { csrPem: upperCsr } = await createGatewayKeyAndCsr('dup-upper');
    const upper = await api(tp).post('/api/v1/gateways/enroll', {
      token: await enrollmentToken(),
      name: 'GW-Renamed',
      csr: upperCsr,
    });
    expect(upper.status).toBe(409);
    expect(upper.body.error.message).toContain(
      '"gw-renamed" already exists in this organization (names are compared ignoring case)',
    );
    const { csrPem: otherCsr } = await createGatewayKeyAndCsr('case-other');
    const other = await api(tp).post('/api/v1/gateways/enroll', {
      token: await enrollmentToken(),
      name: 'case-other',
      csr: otherCsr,
    });
    expect(other.status).toBe(201);
    const renamed = await admin.client.patch(`/api/v1/gateways/case-other`, { name: 'GW-RENAMED' });
    expect(renamed.status).toBe(409);
    expect(renamed.body.error.message).toMatch(/"gw-renamed" already exists .*ignoring case/);
    // Its own name in another case is fine.
    const recased = await admin.client.patch(`/api/v1/gateways/case-other`, { name: 'Case-Other' });
    expect(recased.status, recased.text).toBe(200);
    expect((await admin.client.delete('/api/v1/gateways/Case-Other')).status).toBe(200);

    const hub = tp.platform.ctx.directory.hub;
    expect(hub.live(id)).toBeDefined();
    const started = Date.now();
    const deleted = await admin.client.delete(`/api/v1/gateways/${id}`);
    expect(deleted.status).toBe(200);
    expect(deleted.body).toEqual({ deleted: true, leftPools: [], warnings: [] });
    await waitFor(() => !hub.live(id), 1000, 'tunnel dropped');
    expect(Date.now() - started).toBeLessThan(1000);
    expect((await admin.client.get(`/api/v1/gateways/${id}`)).status).toBe(404);
    await agent.waitForOutput(/was deleted or revoked on the platform/, 10_000);
    expect(hub.live(id)).toBeUndefined();
  });

  it("another org cannot see or touch this org's gateways (404)", async () => {
    const { id } = await startGateway('gw-private');
    const other = await createSecondOrg(tp);
    for (const [method, path] of [
      ['GET', `/api/v1/gateways/${id}`],
      ['PATCH', `/api/v1/gateways/${id}`],
      ['DELETE', `/api/v1/gateways/${id}`],
      ['POST', `/api/v1/gateways/${id}/health-check`],
      ['POST', `/api/v1/gateways/${id}/drain`],
      ['POST', `/api/v1/gateways/${id}/undrain`],
    ] as const) {
      const res = await other.client.send(
        method,
        path,
        method === 'PATCH' ? { name: 'stolen' } : undefined,
      );
      expect(res.status, `${method} ${path}`).toBe(404);
    }
    expect((await other.client.get('/api/v1/gateways')).body.items).toEqual([]);
    expect(await health(id)).toBe('healthy');
  });

  it('takes the enrollment token from GATEPOOL_ENROLL_TOKEN or --token-file, out of the process list (QA3 F17)', async () => {
    const viaEnv = await enrollmentToken();
    const viaFile = await enrollmentToken();
    const file = join(await fleet.stateDir(), 'token');
    writeFileSync(file, `${viaFile}\n`, { mode: 0o600 });
    const agents = await Promise.all([
      fleet.start({
        platformUrl: tp.url,
        name: 'gw-env-token',
        allow: [`127.0.0.1:${echo.port}`],
        env: { GATEPOOL_ENROLL_TOKEN: viaEnv },
      }),
      fleet.start({
        platformUrl: tp.url,
        name: 'gw-file-token',
        allow: [`127.0.0.1:${echo.port}`],
        extraArgs: ['--token-file', file],
      }),
    ]);
    for (const agent of agents) {
      await agent.waitForOutput(/enrolled as gateway/, 15_000);
      const args = readFileSync(`/proc/${agent.child.pid}/cmdline`, 'utf8');
      expect(args).not.toContain(viaEnv);
      expect(args).not.toContain(viaFile);
    }
    await waitFor(
      async () => {
        const items = (await admin.client.get('/api/v1/gateways?limit=200')).body.items as {
          name: string;
          health: string;
        }[];
        return ['gw-env-token', 'gw-file-token'].every(
          (n) => items.find((g) => g.name === n)?.health === 'healthy',
        );
      },
      15_000,
      'both gateways healthy',
    );
    // An empty file is said as such, before anything is sent.
    const empty = join(await fleet.stateDir(), 'empty');
    writeFileSync(empty, '\n');
    const refused = await fleet.start({
      platformUrl: tp.url,
      name: 'gw-empty-token',
      extraArgs: ['--token-file', empty],
    });
    expect((await within(refused.exited, 15_000, 'refused exit')).code).toBe(1);
    expect(refused.output()).toContain(`--token-file ${empty} is empty`);
  });

  it('names a gateway by its name as well as its id, within the org (QA3 F9)', async () => {
    const { csrPem } = await createGatewayKeyAndCsr('by-name');
    const enrolled = await api(tp).post('/api/v1/gateways/enroll', {
      token: await enrollmentToken(),
      name: 'gw-by-name',
      csr: csrPem,
    });
    expect(enrolled.status).toBe(201);
    const id = (enrolled.body as unknown as { gatewayId: string }).gatewayId;

    const got = await admin.client.get('/api/v1/gateways/gw-by-name');
    expect(got.status).toBe(200);
    expect(got.body).toMatchObject({ id, name: 'gw-by-name' });
    expect((await admin.client.get('/api/v1/gateways/gw-by-name/resources')).body).toEqual({
      items: [],
      hidden: 0,
    });
    const check = await admin.client.post('/api/v1/gateways/gw-by-name/health-check');
    expect(check.status).toBe(200);
    expect(check.body.ok).toBe(false);
    expect((await admin.client.post('/api/v1/gateways/gw-by-name/drain')).body).toMatchObject({
      id,
      draining: true,
    });
    expect((await admin.client.post('/api/v1/gateways/gw-by-name/undrain')).body).toMatchObject({
      id,
      draining: false,
    });
    const renamed = await admin.client.patch('/api/v1/gateways/gw-by-name', {
      name: 'gw-by-name-2',
    });
    expect(renamed.status).toBe(200);
    expect(renamed.body).toMatchObject({ id, name: 'gw-by-name-2' });
    expect((await admin.client.get('/api/v1/gateways/gw-by-name')).status).toBe(404);

    // Something that can name no gateway is a 400 saying what is accepted.
    const bad = await admin.client.get(`/api/v1/gateways/${encodeURIComponent('no such gw!')}`);
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toContain('id must be a gateway id (UUID) or a gateway name');
    // Another organization's gateway name is nothing to it.
    const other = await createSecondOrg(tp);
    for (const [method, path] of [
      ['GET', '/api/v1/gateways/gw-by-name-2'],
      ['POST', '/api/v1/gateways/gw-by-name-2/drain'],
      ['DELETE', '/api/v1/gateways/gw-by-name-2'],
    ] as const) {
      expect((await other.client.send(method, path)).status, `${method} ${path}`).toBe(404);
    }

    const deleted = await admin.client.delete('/api/v1/gateways/gw-by-name-2');
    expect(deleted.status).toBe(200);
    expect((await admin.client.get(`/api/v1/gateways/${id}`)).status).toBe(404);
  });
});

describe('enrollment rate limit (GATEPOOL_ENROLL_RATE_LIMIT)', () => {
  let tp: TestPlatform;
  let admin: Account;
  const fleet = new AgentFleet();

  beforeAll(async () => {
    tp = await startTestPlatform('pglite', { env: { GATEPOOL_ENROLL_RATE_LIMIT: '2' } });
    admin = await bootstrap(tp);
  });
  afterAll(async () => {
    await fleet.close();
    await tp?.close();
  });

  it('answers 429 with Retry-After past the limit, and a limited agent waits instead of quitting', async () => {
    const token = async () =>
      (await admin.client.post('/api/v1/gateways/enrollment-tokens', {})).body.token as string;
    const first = await fleet.start({ platformUrl: tp.url, token: await token(), name: 'gw-a' });
    await first.waitForOutput(/enrolled as gateway "gw-a"/, 15_000);

    const csr = '-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----';
    const second = await api(tp).post('/api/v1/gateways/enroll', {
      token: 'gpe_x',
      name: 'x',
      csr,
    });
    expect(second.status).toBe(401);
    const third = await fetch(`${tp.url}/api/v1/gateways/enroll`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token: 'gpe_x', name: 'x', csr }),
    });
    expect(third.status).toBe(429);
    const retryAfter = Number(third.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    const body = (await third.json()) as { error: { message: string } };
    expect(body.error.message).toMatch(/^Too many enrollment attempts; try again in \d+ s\.$/);

    // A fleet enrolling from one address: the agent says why it waits and keeps running.
    const limited = await fleet.start({ platformUrl: tp.url, token: await token(), name: 'gw-b' });
    await limited.waitForOutput(
      /the platform is limiting enrollments from this address; retrying in \d+ s/,
      15_000,
    );
    const exitedEarly = await Promise.race([
      limited.exited.then(() => true),
      sleep(300).then(() => false),
    ]);
    expect(exitedEarly).toBe(false);
    expect(limited.output()).not.toMatch(/enrollment failed/);
  });
});

function api(tp: TestPlatform) {
  return {
    post: (path: string, body: unknown) =>
      fetch(tp.url + path, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      }).then(async (r) => ({
        status: r.status,
        body: (await r.json()) as { error: { code: string; message: string } },
      })),
  };
}

export type { RunningAgent };
