/**
 * Moving the platform with real processes: a backup of a running platform restored into a
 * second one (other ports, as on a new host). A gateway restarted with the new --platform asks
 * it for its tunnel address, says so in one line, and ends up connected (healthy) there — not
 * to the old platform. A platform that does not know the gateway is named in one line instead.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentFleet } from '../helpers/gateway-agent.js';
import {
  bootstrap,
  startTestPlatform,
  type Account,
  type TestPlatform,
} from '../helpers/platform.js';
import { within } from '../tunnel/harness.js';
import { gatepool, startServer, type ServerProcess } from './processes.js';

interface GatewayItem {
  name: string;
  health: string;
  connectedSince: string | null;
}

async function gatewayOn(server: ServerProcess, token: string, name: string) {
  const res = await server.api(token).get('/api/v1/gateways');
  expect(res.status, res.text).toBe(200);
  return (res.body.items as GatewayItem[]).find((g) => g.name === name);
}

async function eventually<T>(what: string, fn: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 100; i++) {
    const value = await fn();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('moving the platform', () => {
  let dir: string;
  let oldServer: ServerProcess | undefined;
  let newServer: ServerProcess | undefined;
  let stranger: TestPlatform | undefined;
  let admin: Account;
  let moverStateDir = '';
  const fleet = new AgentFleet();

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'gatepool-move-'));
  });
  afterAll(async () => {
    await fleet.close();
    await oldServer?.kill('SIGKILL');
    await newServer?.kill('SIGKILL');
    await stranger?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a gateway restarted with the new --platform connects to the new platform', async () => {
    const oldData = join(dir, 'old');
    oldServer = await startServer({ GATEPOOL_DATA_DIR: oldData });
    admin = await bootstrap(oldServer.url);
    const token = (await admin.client.post('/api/v1/gateways/enrollment-tokens', {})).body
      .token as string;
    const first = await fleet.start({
      platformUrl: oldServer.url,
      token,
      name: 'mover',
      allow: ['127.0.0.1:5432'],
    });
    await first.waitForOutput(/connected: tunnel up/, 20_000);
    const oldTunnel = /tunnel up to (\S+)/.exec(first.output())![1]!;
    moverStateDir = first.stateDir;

    // The move: a backup of the running platform restored elsewhere and started on new ports.
    const backup = join(dir, 'move.tar.gz');
    const b = await gatepool(['backup', '--out', backup], { GATEPOOL_DATA_DIR: oldData });
    expect(b.code, b.stderr).toBe(0);
    const newData = join(dir, 'new');
    const r = await gatepool(['restore', '--from', backup], { GATEPOOL_DATA_DIR: newData });
    expect(r.code, r.stderr).toBe(0);
    newServer = await startServer({ GATEPOOL_DATA_DIR: newData });
    const newTunnel = /gateways dial (\S+)/.exec(newServer.output())![1]!;
    expect(newTunnel).not.toBe(oldTunnel);

    first.child.kill('SIGTERM');
    expect((await within(first.exited, 10_000, 'agent drain')).code).toBe(0);
    const moved = await fleet.start({
      platformUrl: newServer.url,
      name: 'mover',
      stateDir: first.stateDir,
    });
    await moved.waitForOutput(/connected: tunnel up/, 20_000);
    const lines = moved.output().split('\n');
    expect(lines.filter((l) => l.includes('platform moved'))).toHaveLength(1);
    expect(moved.output()).toContain(`platform moved: tunnel now ${newTunnel} (was ${oldTunnel})`);
    expect(moved.output()).toContain(`connected: tunnel up to ${newTunnel}`);
    const state = JSON.parse(readFileSync(join(first.stateDir, 'gateway.json'), 'utf8')) as {
      platform: string;
      tunnelAddress: string;
      tunnelFrom?: string;
    };
    expect(state).toMatchObject({ platform: newServer.url, tunnelAddress: newTunnel });
    expect(state.tunnelFrom).toBeUndefined();

    // Healthy on the new platform; the old one only saw it leave.
    const there = await eventually('healthy on the new platform', async () => {
      const gw = await gatewayOn(newServer!, admin.token, 'mover');
      return gw?.health === 'healthy' ? gw : undefined;
    });
    expect(there.connectedSince).not.toBeNull();
    expect((await gatewayOn(oldServer, admin.token, 'mover'))?.connectedSince).toBeNull();

    // Restarted again with only --state-dir: no question, no line, same tunnel.
    moved.child.kill('SIGTERM');
    await within(moved.exited, 10_000, 'agent drain');
    const again = await fleet.start({
      platformUrl: newServer.url,
      name: 'mover',
      stateDir: first.stateDir,
    });
    await again.waitForOutput(/connected: tunnel up/, 20_000);
    expect(again.output()).not.toContain('platform moved');
    expect(again.output()).toContain(`tunnel up to ${newTunnel}`);
    again.child.kill('SIGTERM');
    await within(again.exited, 10_000, 'agent drain');
  }, 300_000);

  it('a platform that does not know the gateway says so in one line', async () => {
    stranger = await startTestPlatform('pglite');
    const copy = await fleet.stateDir();
    cpSync(moverStateDir, copy, { recursive: true });
    const agent = await fleet.start({ platformUrl: stranger.url, name: 'mover', stateDir: copy });
    const { code } = await within(agent.exited, 20_000, 'refused agent exit');
    expect(code).toBe(3);
    const lines = agent.output().trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`the platform at ${stranger.url} does not know gateway "mover"`);
    expect(lines[0]).toContain('enroll this host again with a new token');
    expect(agent.output()).not.toContain('tunnel up');
    // Nothing was saved: the state still points at the platform it belongs to.
    const state = JSON.parse(readFileSync(join(copy, 'gateway.json'), 'utf8')) as {
      platform: string;
    };
    expect(state.platform).toBe(newServer!.url);
  }, 60_000);
});
