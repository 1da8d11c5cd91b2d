/**
 * The access-target scenario: a test platform with the Enterprise plan, a pool of two real
 * gateway agents allowed to reach the machine's PostgreSQL (127.0.0.1:5432) and a loopback
 * "hash" server, and access targets through that pool.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { AgentFleet, type RunningAgent } from '../helpers/gateway-agent.js';
import {
  bootstrap,
  issueTestLicense,
  startTestPlatform,
  waitFor,
  type Account,
  type TestPlatform,
} from '../helpers/platform.js';
import { within } from '../tunnel/harness.js';
import { nodeEntry } from '../helpers/entry.js';

export const PG = { host: '127.0.0.1', port: 5432 };
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * A series' value on the platform's /metrics, `series` as exposed (e.g.
 * `gatepool_access_predials_total{end="used"}`); 0 while it has not been exported.
 */
export async function metric(platformUrl: string, series: string): Promise<number> {
  const text = await (await fetch(`${platformUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

/** A node-postgres client for the machine's PostgreSQL through a forwarded local port. */
export function localPg(port: number): pg.Client {
  const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
  // A connection cut under it is the test's to check: no unhandled 'error' event.
  client.on('error', () => undefined);
  return client;
}

/**
 * A target that hashes everything it receives and, when the client half-closes, answers with
 * the SHA-256 (hex) and closes: a transfer is intact when both ends agree.
 */
export async function startHashServer(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    const hash = createHash('sha256');
    s.on('data', (c: Buffer) => hash.update(c));
    s.on('end', () => s.end(hash.digest('hex')));
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

export async function freePort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((r) => probe.close(() => r()));
  return port;
}

export interface Member {
  agent: RunningAgent;
  id: string;
  name: string;
}

export interface AccessScenario {
  tp: TestPlatform;
  admin: Account;
  poolId: string;
  members: Member[];
  hash: { port: number; close(): Promise<void> };
  /** A loopback port no gateway's --allow covers. */
  deniedPort: number;
  fleet: AgentFleet;
  /** Creates an access target through the pool (as the admin). */
  target(body: Record<string, unknown>): Promise<{ id: string; name: string }>;
  close(): Promise<void>;
}

export async function startScenario(members = 2): Promise<AccessScenario> {
  const tp = await startTestPlatform('pglite', { env: { GATEPOOL_ENROLL_RATE_LIMIT: '1000' } });
  const fleet = new AgentFleet();
  const hash = await startHashServer();
  try {
    const admin = await bootstrap(tp);
    await admin.client.put('/api/v1/license', {
      key: await issueTestLicense({ plan: 'enterprise', org: admin.orgId }),
    });
    const pool = await admin.client.post('/api/v1/gateway-pools', { name: 'dc1' });
    if (pool.status !== 201) throw new Error(`pool: ${pool.status} ${pool.text}`);
    const poolId = pool.body.id as string;
    const deniedPort = await freePort();
    const agents = await Promise.all(
      Array.from({ length: members }, async (_, i) => {
        const tok = await admin.client.post('/api/v1/gateways/enrollment-tokens', {
          poolIds: [poolId],
        });
        return fleet.start({
          platformUrl: tp.url,
          token: tok.body.token as string,
          name: `dc1-m${i}`,
          allow: [`${PG.host}:${PG.port}`, `127.0.0.1:${hash.port}`],
        });
      }),
    );
    const detail = await waitFor(
      async () => {
        const res = await admin.client.get(`/api/v1/gateway-pools/${poolId}`);
        const up = res.body.members?.filter((m: { health: string }) => m.health === 'healthy');
        return up?.length === members ? res.body : undefined;
      },
      30_000,
      `${members} pool members healthy`,
    );
    const list = detail.members as { id: string; name: string }[];
    return {
      tp,
      admin,
      poolId,
      hash,
      deniedPort,
      fleet,
      members: agents.map((agent) => {
        const m = list.find((x) => x.name === agent.name);
        if (!m) throw new Error(`member ${agent.name} missing`);
        return { agent, id: m.id, name: agent.name };
      }),
      async target(body) {
        const res = await admin.client.post('/api/v1/access-targets', {
          gatewayPoolId: poolId,
          ...body,
        });
        if (res.status !== 201) throw new Error(`target: ${res.status} ${res.text}`);
        return res.body as { id: string; name: string };
      },
      async close() {
        await fleet.close();
        await hash.close();
        await tp.close();
      },
    };
  } catch (err) {
    await fleet.close();
    await hash.close();
    await tp.close();
    throw err;
  }
}

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI from source to completion (bounded). */
export function gatepool(
  args: string[],
  env: Record<string, string>,
  timeoutMs = 60_000,
): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [...nodeEntry('cli'), ...args],
      { cwd: ROOT, timeout: timeoutMs, env: { ...process.env, ...env } },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

/** `gatepool connect TARGET` left running: resolves once it printed its line. */
export async function startConnect(
  target: string,
  env: Record<string, string>,
  extra: string[] = [],
): Promise<{
  child: ChildProcess;
  line: string;
  port: number;
  stderr(): string;
  stop(): Promise<void>;
}> {
  const child = spawn(process.execPath, [...nodeEntry('cli'), 'connect', target, ...extra], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr?.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const exited = once(child, 'exit');
  const line = await within(
    new Promise<string>((resolve, reject) => {
      const check = setInterval(() => {
        const nl = stdout.indexOf('\n');
        if (nl >= 0) {
          clearInterval(check);
          resolve(stdout.slice(0, nl));
        } else if (child.exitCode !== null) {
          clearInterval(check);
          reject(new Error(`connect exited ${child.exitCode}: ${stderr}`));
        }
      }, 20);
    }),
    30_000,
    `gatepool connect ${target} to print its line`,
  );
  const port = Number(/Forwarding [^ ]+:(\d+) /.exec(line)?.[1]);
  return {
    child,
    line,
    port,
    stderr: () => stderr,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await within(exited, 10_000, 'gatepool connect to exit').catch(() => child.kill('SIGKILL'));
    },
  };
}

export function psql(
  port: number,
  sql: string,
  timeoutMs = 20_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      'psql',
      [
        '-X',
        '-tA',
        '-h',
        '127.0.0.1',
        '-p',
        String(port),
        '-U',
        'postgres',
        '-d',
        'postgres',
        '-c',
        sql,
      ],
      { timeout: timeoutMs, env: { ...process.env, PGCONNECT_TIMEOUT: '10' } },
      (err, stdout, stderr) =>
        resolve({
          code: err ? (typeof err.code === 'number' ? err.code : 1) : 0,
          stdout: String(stdout),
          stderr: String(stderr),
        }),
    );
  });
}

/** A throwaway database on the machine's PostgreSQL with pgbench's tables (scale 1). */
export async function createPgbenchDatabase(): Promise<{ name: string; drop(): Promise<void> }> {
  const name = `gatepool_access_${randomBytes(4).toString('hex')}`;
  const admin = (sql: string) =>
    new Promise<void>((resolve, reject) =>
      execFile(
        'psql',
        [
          '-X',
          '-q',
          '-h',
          PG.host,
          '-p',
          String(PG.port),
          '-U',
          'postgres',
          '-d',
          'postgres',
          '-c',
          sql,
        ],
        { timeout: 30_000 },
        (err, _o, stderr) => (err ? reject(new Error(`${sql}: ${stderr}`)) : resolve()),
      ),
    );
  await admin(`CREATE DATABASE ${name}`);
  await new Promise<void>((resolve, reject) =>
    execFile(
      'pgbench',
      ['-i', '-q', '-s', '1', '-h', PG.host, '-p', String(PG.port), '-U', 'postgres', name],
      { timeout: 60_000 },
      (err, _o, stderr) => (err ? reject(new Error(`pgbench -i: ${stderr}`)) : resolve()),
    ),
  );
  return { name, drop: () => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}
