/**
 * For the benchmarks that need a whole platform (failover, k8s-login): a platform on the
 * embedded database in a temporary directory, an organization with an enterprise license, and
 * a pool of real gateway agents that may reach `allow`. Loopback only, ports picked by the OS,
 * logs silent so they cost nothing in the figures.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportPKCS8, exportSPKI, generateKeyPair } from 'jose';
import pino from 'pino';
import { loadConfig } from '../../src/server/config.js';
import { openDatabase } from '../../src/server/db/client.js';
import { issueLicense } from '../../src/server/license/license.js';
import { startPlatform, type Platform } from '../../src/server/server.js';
import { AgentFleet, type RunningAgent } from '../../test/helpers/gateway-agent.js';
import { sleep } from '../../test/tunnel/harness.js';

export type Json = Record<string, unknown>;

export async function call(
  base: string,
  method: string,
  path: string,
  token?: string,
  body?: unknown,
): Promise<{ status: number; body: Json }> {
  const res = await fetch(base + path, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Json) : {} };
}

/** `call`, failing the bench with the answer when the status is not the expected one. */
export async function must(
  base: string,
  method: string,
  path: string,
  token: string | undefined,
  body: unknown,
  status: number,
): Promise<Json> {
  const res = await call(base, method, path, token, body);
  if (res.status !== status)
    throw new Error(`${method} ${path} answered ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body;
}

export interface BenchPool {
  platform: Platform;
  base: string;
  /** The bootstrap admin's session token. */
  token: string;
  orgId: string;
  poolId: string;
  /** In the order of `members`. */
  agents: RunningAgent[];
  /** Gateway id by member name. */
  ids: Map<string, string>;
  close(): Promise<void>;
}

export async function startBenchPool(opts: {
  label: string;
  poolName: string;
  members: string[];
  /** Targets the agents may reach (`--allow`). */
  allow: string[];
  /** Targets the platform itself may reach without a gateway (GATEPOOL_DIRECT_TARGETS). */
  directTargets?: string[];
  /** More platform settings (GATEPOOL_*). */
  env?: Record<string, string>;
}): Promise<BenchPool> {
  const dataDir = await mkdtemp(join(tmpdir(), `gatepool-bench-${opts.label}-`));
  const keys = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  const platform = await startPlatform(
    loadConfig({
      GATEPOOL_HOST: '127.0.0.1',
      GATEPOOL_PORT: '0',
      GATEPOOL_TUNNEL_PORT: '0',
      GATEPOOL_TUNNEL_HOSTNAME: '127.0.0.1',
      GATEPOOL_DATA_DIR: dataDir,
      GATEPOOL_LOG_LEVEL: 'silent',
      GATEPOOL_LICENSE_PUBLIC_KEY: await exportSPKI(keys.publicKey),
      GATEPOOL_DIRECT_TARGETS: (opts.directTargets ?? []).join(','),
      ...opts.env,
    }),
    { logger: pino({ level: 'silent' }), database: await openDatabase({}) },
  );
  const fleet = new AgentFleet();
  const close = async () => {
    await fleet.close();
    await platform.close();
    await rm(dataDir, { recursive: true, force: true });
  };
  try {
    const base = platform.url;
    const boot = await must(
      base,
      'POST',
      '/api/v1/bootstrap',
      undefined,
      { email: 'bench@example.com', password: 'bench-password-123', organizationName: 'Bench' },
      201,
    );
    const token = boot.token as string;
    const orgId = (boot.organization as { id: string }).id;
    const key = await issueLicense({
      privateKeyPem: await exportPKCS8(keys.privateKey),
      plan: 'enterprise',
      org: orgId,
    });
    await must(base, 'PUT', '/api/v1/license', token, { key }, 200);
    const pool = await must(
      base,
      'POST',
      '/api/v1/gateway-pools',
      token,
      { name: opts.poolName },
      201,
    );
    const poolId = pool.id as string;
    const agents: RunningAgent[] = [];
    for (const name of opts.members) {
      const enrollment = await must(
        base,
        'POST',
        '/api/v1/gateways/enrollment-tokens',
        token,
        { poolIds: [poolId] },
        201,
      );
      agents.push(
        await fleet.start({
          platformUrl: base,
          token: enrollment.token as string,
          name,
          allow: opts.allow,
        }),
      );
    }
    const deadline = Date.now() + 30_000;
    let detail = await must(base, 'GET', `/api/v1/gateway-pools/${poolId}`, token, undefined, 200);
    while (detail.healthyMemberCount !== opts.members.length) {
      if (Date.now() > deadline) throw new Error('pool members did not become healthy');
      await sleep(100);
      detail = await must(base, 'GET', `/api/v1/gateway-pools/${poolId}`, token, undefined, 200);
    }
    const ids = new Map(
      (detail.members as { id: string; name: string }[]).map((m) => [m.name, m.id] as const),
    );
    return { platform, base, token, orgId, poolId, agents, ids, close };
  } catch (err) {
    await close();
    throw err;
  }
}
