/**
 * Scenario for the Kubernetes-auth platform tests: a test platform, the Kubernetes API stand-in,
 * real gateway agents (a pool of three and a standalone one) allowed to reach it, and an app
 * serving the kubernetes-auth routes on the platform's own context with a log capture.
 */
import net, { type AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { inspect } from 'node:util';
import pino from 'pino';
import { buildApp } from '../../src/server/app.js';
import type { Api } from '../../src/server/http/schemas.js';
import { kubernetesAuthRoutes } from '../../src/server/kubernetes-auth/routes.js';
import type { RateLimiter } from '../../src/server/auth/rate-limit.js';
import { AgentFleet, type RunningAgent } from '../helpers/gateway-agent.js';
import {
  addUser,
  api,
  bootstrap,
  issueTestLicense,
  startTestPlatform,
  waitFor,
  type Account,
  type ApiClient,
  type Driver,
  type TestPlatform,
} from '../helpers/platform.js';
import { startKubeApi, type KubeApi } from '../fixtures/kube-api.js';

export interface Scenario {
  tp: TestPlatform;
  kube: KubeApi;
  admin: Account;
  /** The platform API (gateways, pools, audit …) as the admin. */
  plat: ApiClient;
  /** Base URL serving the kubernetes-auth routes. */
  k8sUrl: string;
  /** The kubernetes-auth routes (and the core API) as the admin. */
  k8s: ApiClient;
  fleet: AgentFleet;
  /** Every log line written while the scenario ran: the platform's and the routes' own. */
  logs: string[];
  /** A loopback port with nothing listening, allowed by every gateway. */
  closedPort: number;
  close(): Promise<void>;
}

async function freePort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((r) => probe.close(() => r()));
  return port;
}

/** Captures every call on a logger object (pino instance) as text (util.inspect: cycles are fine). */
function captureLogger(logger: object, sink: string[]): void {
  const target = logger as Record<string, unknown>;
  for (const level of ['trace', 'debug', 'info', 'warn', 'error', 'fatal']) {
    const original = target[level];
    if (typeof original !== 'function') continue;
    target[level] = (...args: unknown[]) => {
      sink.push(inspect(args, { depth: 6, breakLength: Infinity, maxStringLength: null }));
      return (original as (...a: unknown[]) => unknown).apply(logger, args);
    };
  }
}

export async function startScenario(
  driver: Driver,
  opts: { loginLimiter?: RateLimiter; directTargets?: (kube: KubeApi) => string } = {},
): Promise<Scenario> {
  const kube = await startKubeApi();
  // Configs without a gateway reach the stand-in directly: the operator allows exactly it.
  const directTargets = opts.directTargets?.(kube) ?? `127.0.0.1:${kube.port}`;
  const tp = await startTestPlatform(driver, {
    env: { GATEPOOL_DIRECT_TARGETS: directTargets },
  }).catch(async (err: unknown) => {
    await kube.close();
    throw err;
  });
  const fleet = new AgentFleet();
  const logs: string[] = [];
  let app: Api | undefined;
  try {
    captureLogger(tp.platform.ctx.log, logs);
    // The routes' own app, on the platform's context (same database, pools and tunnel hub),
    // with a trace-level logger into `logs`: request logs and errors are inspected too.
    const logStream = new Writable({
      write(chunk: Buffer, _enc, cb) {
        logs.push(chunk.toString('utf8'));
        cb();
      },
    });
    app = await buildApp(tp.platform.ctx, {
      logger: pino({ level: 'trace' }, logStream),
      modules: [(a, c) => kubernetesAuthRoutes(a, c, { loginLimiter: opts.loginLimiter })],
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const k8sUrl = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    const admin = await bootstrap(tp);
    const license = await issueTestLicense({ plan: 'enterprise', org: admin.orgId });
    const lic = await admin.client.put('/api/v1/license', { key: license });
    if (lic.status !== 200) throw new Error(`license: ${lic.status} ${lic.text}`);
    const closedPort = await freePort();
    const served = app;
    return {
      tp,
      kube,
      admin,
      plat: admin.client,
      k8sUrl,
      k8s: api(k8sUrl, admin.token),
      fleet,
      logs,
      closedPort,
      async close() {
        await fleet.close();
        await served.close();
        await kube.close();
        await tp.close();
      },
    };
  } catch (err) {
    await fleet.close();
    await app?.close();
    await kube.close();
    await tp.close();
    throw err;
  }
}

/** Enrolls and starts gateways (optionally into pools), allowed to the stand-in and closedPort. */
export async function startGateways(
  s: Scenario,
  names: string[],
  poolIds: string[] = [],
): Promise<{ agents: RunningAgent[]; ids: string[] }> {
  const agents: RunningAgent[] = [];
  for (const name of names) {
    const tok = await s.plat.post('/api/v1/gateways/enrollment-tokens', {
      name: `token ${name}`,
      poolIds,
    });
    if (tok.status !== 201) throw new Error(`enrollment token: ${tok.status} ${tok.text}`);
    agents.push(
      await s.fleet.start({
        platformUrl: s.tp.url,
        token: tok.body.token as string,
        name,
        allow: [`127.0.0.1:${s.kube.port}`, `127.0.0.1:${s.closedPort}`],
      }),
    );
  }
  const ids = await waitFor(
    async () => {
      const res = await s.plat.get('/api/v1/gateways?limit=200');
      const items = (res.body?.items ?? []) as Array<{ id: string; name: string; health: string }>;
      const mine = names.map((n) => items.find((g) => g.name === n));
      return mine.every((g) => g?.health === 'healthy') ? mine.map((g) => g!.id) : null;
    },
    30_000,
    `gateways ${names.join(', ')} healthy`,
  );
  return { agents, ids };
}

export async function createPool(s: Scenario, name: string): Promise<string> {
  const res = await s.plat.post('/api/v1/gateway-pools', { name });
  if (res.status !== 201) throw new Error(`pool ${name}: ${res.status} ${res.text}`);
  return res.body.id as string;
}

/** Waits until the pool shows `healthy` healthy members. */
export async function waitForHealthyMembers(
  s: Scenario,
  poolId: string,
  healthy: number,
  ms = 10_000,
): Promise<void> {
  await waitFor(
    async () =>
      (await s.plat.get(`/api/v1/gateway-pools/${poolId}`)).body?.healthyMemberCount === healthy,
    ms,
    `pool ${poolId} with ${healthy} healthy member(s)`,
  );
}

/**
 * A person who is no admin but may configure Kubernetes auth (the built-in member may not):
 * everything a viewer holds plus KubernetesAuth:create/edit, as a custom role `k8s-operator`.
 */
export async function addKubernetesOperator(tp: TestPlatform, admin: Account): Promise<Account> {
  const roles = await admin.client.get('/api/v1/roles');
  const viewer = (
    roles.body.items as { slug: string; permissions: { subject: string; action: string }[] }[]
  ).find((r) => r.slug === 'viewer');
  const role = await admin.client.post('/api/v1/roles', {
    slug: 'k8s-operator',
    name: 'Kubernetes operator',
    permissions: [
      ...(viewer?.permissions ?? []),
      { subject: 'KubernetesAuth', action: 'create' },
      { subject: 'KubernetesAuth', action: 'edit' },
    ],
  });
  if (role.status !== 201)
    throw new Error(`POST /api/v1/roles answered ${role.status}: ${role.text}`);
  return addUser(tp, admin, 'k8s-operator');
}
