import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EnrollRequestSchema, type EnrollResponse } from '../../src/protocol/enrollment.js';
import { signGatewayCsr } from '../../src/server/gateways/pki.js';
import { agentNodeArgs, ROOT, TunnelHarness, within } from './harness.js';

interface Run {
  code: number | null;
  stderr: string;
}

function runAgent(args: string[], ms = 10_000): Promise<Run> {
  const child = spawn(process.execPath, [...agentNodeArgs(), 'gateway', 'start', ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => (stderr += chunk));
  return within(
    once(child, 'exit').then(([code]) => ({ code: code as number | null, stderr })),
    ms,
    `agent ${args.join(' ')}`,
  );
}

/**
 * A stand-in for the platform's enrollment endpoint: signs CSRs with the harness's org CA for one
 * valid token and answers the API error shape otherwise.
 */
describe('gateway start: enrollment and state', () => {
  let harness: TunnelHarness;
  let api: http.Server;
  let platform: string;
  const dirs: string[] = [];
  const received: unknown[] = [];
  let tokenUsed = false;

  beforeAll(async () => {
    harness = await TunnelHarness.start();
    api = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        void (async () => {
          const body: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          received.push(body);
          const parsed = EnrollRequestSchema.safeParse(body);
          const fail = (status: number, code: string, message: string): void => {
            res.writeHead(status, { 'content-type': 'application/json' });
            res.end(JSON.stringify({ error: { code, message } }));
          };
          if (req.url !== '/api/v1/gateways/enroll' || req.method !== 'POST') {
            return fail(404, 'not_found', 'no such route');
          }
          if (!parsed.success) return fail(400, 'bad_request', 'invalid body');
          if (parsed.data.token !== 'good-token' || tokenUsed) {
            return fail(
              401,
              'invalid_token',
              'The enrollment token is invalid, expired or already used.',
            );
          }
          tokenUsed = true;
          const gatewayId = 'gw_enrolled';
          const signed = await signGatewayCsr({
            ca: harness.orgCa,
            csrPem: parsed.data.csr,
            orgId: harness.orgId,
            gatewayId,
          });
          harness.records.set(gatewayId, {
            orgId: harness.orgId,
            gatewayId,
            name: parsed.data.name,
            fingerprint: signed.fingerprint256,
          });
          const answer: EnrollResponse = {
            gatewayId,
            orgId: harness.orgId,
            certificate: signed.certPem,
            caCertificate: harness.orgCa.certPem,
            serverCaCertificate: harness.serverCa.certPem,
            tunnelAddress: `127.0.0.1:${harness.port}`,
          };
          res.writeHead(201, { 'content-type': 'application/json' });
          res.end(JSON.stringify(answer));
        })();
      });
    });
    api.listen(0, '127.0.0.1');
    await once(api, 'listening');
    platform = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await harness?.close();
    api?.close();
    await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  async function tempDir(): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'gatepool-cli-'));
    dirs.push(dir);
    return join(dir, 'state');
  }

  it('prints the API error message and exits 1 when enrollment is refused', async () => {
    const stateDir = await tempDir();
    const run = await runAgent([
      '--platform',
      platform,
      '--token',
      'wrong',
      '--name',
      'edge',
      '--state-dir',
      stateDir,
    ]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('The enrollment token is invalid, expired or already used.');
    await expect(stat(stateDir)).rejects.toThrow();
  });

  it('enrolls once (key stays local), saves 0600 state, connects, and reuses the state later', async () => {
    const stateDir = await tempDir();
    const connected = harness.waitConnected('gw_enrolled', 10_000);
    const agent = harness.spawnAgent('gw_enrolled', stateDir, [
      '--platform',
      platform,
      '--token',
      'good-token',
      '--name',
      'edge-1',
      '--pool',
      'prod',
    ]);
    await connected;
    await agent.waitForOutput(/enrolled as gateway "edge-1" \(gw_enrolled\)/, 1000);
    const request = EnrollRequestSchema.parse(received.at(-1));
    expect(request).toMatchObject({ token: 'good-token', name: 'edge-1', pools: ['prod'] });
    expect(request.csr).toContain('CERTIFICATE REQUEST');
    expect(JSON.stringify(received)).not.toContain('PRIVATE KEY');

    expect((await stat(stateDir)).mode & 0o777).toBe(0o700);
    const file = join(stateDir, 'gateway.json');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const state = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    expect(state).toMatchObject({
      format: 2,
      gatewayId: 'gw_enrolled',
      orgId: harness.orgId,
      settings: { allow: [], labels: {}, pools: ['prod'] },
    });
    expect(String(state.keyPem)).toContain('PRIVATE KEY');

    agent.child.kill('SIGTERM');
    expect((await within(agent.exited, 5000, 'exit')).code).toBe(0);

    // Second run: the used token would be refused, so connecting proves the state was reused.
    const again = harness.waitConnected('gw_enrolled', 10_000);
    const second = harness.spawnAgent('gw_enrolled', stateDir, ['--token', 'good-token']);
    await again;
    await second.waitForOutput(/already enrolled as "edge-1".*--token ignored/, 1000);
    second.child.kill('SIGTERM');
    expect((await within(second.exited, 5000, 'exit')).code).toBe(0);
  });

  it('refuses to start without enrollment options or with a bad rule', async () => {
    const stateDir = await tempDir();
    const missing = await runAgent(['--state-dir', stateDir]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/first run needs --platform, --token, --name/);
    const badRule = await runAgent(['--state-dir', stateDir, '--allow', '10.0.0.0/33:80']);
    expect(badRule.code).toBe(1);
    expect(badRule.stderr).toMatch(/invalid prefix length/);
    const badLabel = await runAgent(['--state-dir', stateDir, '--label', 'novalue']);
    expect(badLabel.code).toBe(1);
    expect(badLabel.stderr).toMatch(/invalid --label/);
  });

  it('refuses a damaged state file with a clear message', async () => {
    const { gatewayId, stateDir } = await harness.createGateway();
    const file = join(stateDir, 'gateway.json');
    const state = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    const other = await harness.createGateway();
    const otherState = JSON.parse(await readFile(join(other.stateDir, 'gateway.json'), 'utf8')) as {
      keyPem: string;
    };
    await writeFile(file, JSON.stringify({ ...state, keyPem: otherState.keyPem }), { mode: 0o600 });
    const run = await runAgent(['--state-dir', stateDir]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/unusable \(key mismatch\)/);
    expect(harness.hub.live(gatewayId)).toBeUndefined();
  });

  it('says it cannot reach an unreachable platform', async () => {
    const run = await runAgent([
      '--platform',
      'http://127.0.0.1:1',
      '--token',
      't',
      '--name',
      'n',
      '--state-dir',
      await tempDir(),
    ]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/cannot reach http:\/\/127\.0\.0\.1:1/);
  });
});
