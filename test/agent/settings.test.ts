/**
 * The agent remembers its settings (issue 11.6): real agent processes against a real tunnel hub,
 * checked by what the platform sees (labels, streams allowed or refused) and by the state file.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { AgentHandle } from '../tunnel/harness.js';
import { roundTrip, TunnelHarness, within } from '../tunnel/harness.js';
import { withTunnelHarness, type EchoServer } from '../tunnel/suite.js';

interface SavedState {
  format: number;
  platform: string;
  settings: { allow: string[]; labels: Record<string, string>; pools: string[] };
}

async function readState(stateDir: string): Promise<SavedState> {
  return JSON.parse(await readFile(join(stateDir, 'gateway.json'), 'utf8')) as SavedState;
}

describe('agent settings: remembered, from --config, overridden by flags', () => {
  let harness: TunnelHarness;
  let echo: EchoServer;
  let other: EchoServer;
  withTunnelHarness((suite) => ({ harness, echo } = suite));

  /** Starts the agent and waits until its tunnel is up (the platform saw its first status). */
  async function run(gatewayId: string, stateDir: string, args: string[]): Promise<AgentHandle> {
    const connected = harness.waitConnected(gatewayId, 10_000);
    const agent = harness.spawnAgent(gatewayId, stateDir, args);
    await connected;
    return agent;
  }

  async function stop(agent: AgentHandle): Promise<void> {
    agent.child.kill('SIGTERM');
    expect((await within(agent.exited, 5000, 'agent exit')).code).toBe(0);
    // The next run's waitConnected must not see this tunnel, which the hub may not have let go.
    if (harness.hub.live(agent.gatewayId)) await harness.waitDisconnected(agent.gatewayId, 3000);
  }

  async function reaches(gatewayId: string, port: number): Promise<boolean> {
    try {
      const stream = await harness.hub.openStream(gatewayId, '127.0.0.1', port);
      return (await roundTrip(stream, Buffer.from('ping'))).toString() === 'ping';
    } catch (error) {
      if ((error as { reason?: string }).reason === 'refused') return false;
      throw error;
    }
  }

  it('a restart with only --state-dir allows and labels what the first run did', async () => {
    const { gatewayId, stateDir } = await harness.createGateway();
    const first = await run(gatewayId, stateDir, [
      '--allow',
      `127.0.0.1:${echo.port}`,
      '--label',
      'site=dc1',
      '--platform',
      'https://platform.example',
    ]);
    expect(await reaches(gatewayId, echo.port)).toBe(true);
    await stop(first);
    expect(await readState(stateDir)).toMatchObject({
      format: 2,
      platform: 'https://platform.example',
      settings: { allow: [`127.0.0.1:${echo.port}`], labels: { site: 'dc1' } },
    });

    const second = await run(gatewayId, stateDir, []);
    await second.waitForOutput(new RegExp(`allowing 127\\.0\\.0\\.1:${echo.port}`), 2000);
    expect(second.output()).not.toMatch(/allowing \(nothing\)|no --allow rules/);
    expect(harness.hub.live(gatewayId)?.labels).toEqual({ site: 'dc1' });
    expect(await reaches(gatewayId, echo.port)).toBe(true);
    await stop(second);
  });

  it('loads a format 1 state file and saves it as format 2 with the settings used', async () => {
    const { gatewayId, stateDir } = await harness.createGateway();
    const file = join(stateDir, 'gateway.json');
    const { settings: _dropped, ...v2 } = JSON.parse(await readFile(file, 'utf8')) as SavedState &
      Record<string, unknown>;
    await writeFile(file, JSON.stringify({ ...v2, format: 1 }), { mode: 0o600 });
    const agent = await run(gatewayId, stateDir, ['--allow', `127.0.0.1:${echo.port}`]);
    expect(await reaches(gatewayId, echo.port)).toBe(true);
    await stop(agent);
    expect(await readState(stateDir)).toMatchObject({
      format: 2,
      settings: { allow: [`127.0.0.1:${echo.port}`], labels: {}, pools: [] },
    });
  });

  it.each([
    ['JSON', 'agent.json'],
    ['YAML', 'agent.yaml'],
  ])('reads its settings from a %s --config file', async (kind, fileName) => {
    const { gatewayId, stateDir } = await harness.createGateway();
    const config = join(stateDir, '..', `${gatewayId}-${fileName}`);
    const settings = {
      'state-dir': stateDir,
      allow: [`127.0.0.1:${echo.port}`],
      labels: { site: 'dc2', tier: 1 },
      'drain-timeout': 5,
    };
    const text =
      kind === 'JSON'
        ? JSON.stringify(settings)
        : [
            `state-dir: ${stateDir}`,
            'allow:',
            `  - 127.0.0.1:${echo.port}`,
            'labels:',
            '  site: dc2',
            '  tier: 1',
            'drain-timeout: 5',
            '',
          ].join('\n');
    await writeFile(config, text);
    const connected = harness.waitConnected(gatewayId, 10_000);
    // No --state-dir on the command line: the file says where the state is.
    const agent = harness.spawnAgent(gatewayId, stateDir, ['--config', config]);
    await connected;
    expect(harness.hub.live(gatewayId)?.labels).toEqual({ site: 'dc2', tier: '1' });
    expect(await reaches(gatewayId, echo.port)).toBe(true);
    await stop(agent);
    expect((await readState(stateDir)).settings).toMatchObject({
      allow: [`127.0.0.1:${echo.port}`],
      labels: { site: 'dc2', tier: '1' },
    });
  });

  it('flags override the config file and the state, and are saved', async () => {
    const { startEchoServer } = await import('../tunnel/harness.js');
    other = await startEchoServer();
    try {
      const { gatewayId, stateDir } = await harness.createGateway();
      const config = join(stateDir, '..', `${gatewayId}-override.yaml`);
      await writeFile(config, `allow: 127.0.0.1:${echo.port}\nlabels:\n  site: from-file\n`);
      const first = await run(gatewayId, stateDir, [
        '--config',
        config,
        '--allow',
        `127.0.0.1:${other.port}`,
      ]);
      // The flag replaced the file's rule; the file still gave the labels.
      expect(await reaches(gatewayId, other.port)).toBe(true);
      expect(await reaches(gatewayId, echo.port)).toBe(false);
      expect(harness.hub.live(gatewayId)?.labels).toEqual({ site: 'from-file' });
      await stop(first);
      expect((await readState(stateDir)).settings).toMatchObject({
        allow: [`127.0.0.1:${other.port}`],
        labels: { site: 'from-file' },
      });

      // Later: a flag replaces the remembered labels; the remembered rule stays.
      const second = await run(gatewayId, stateDir, ['--label', 'site=from-flag']);
      expect(harness.hub.live(gatewayId)?.labels).toEqual({ site: 'from-flag' });
      expect(await reaches(gatewayId, other.port)).toBe(true);
      expect(await reaches(gatewayId, echo.port)).toBe(false);
      await stop(second);
      expect((await readState(stateDir)).settings).toMatchObject({
        allow: [`127.0.0.1:${other.port}`],
        labels: { site: 'from-flag' },
      });
    } finally {
      await other.close();
    }
  });

  it('refuses a config file with an unknown setting, bad YAML or a bad rule, naming the problem', async () => {
    const { gatewayId, stateDir } = await harness.createGateway();
    const cases: Array<[string, string, RegExp]> = [
      [
        'typo.json',
        '{"alow": ["*"]}',
        /unknown setting "alow" \(known: platform, token, name, allow/,
      ],
      // Spelled as the README writes keys (kebab-case), and as the file wrote the typo.
      [
        'typo.yaml',
        'state-dirr: x\n',
        /unknown setting "state-dirr" \(known: .*labels.*pools.*state-dir, drain-timeout, insecure-platform-tls\)/,
      ],
      ['broken.yaml', 'allow: [unclosed\n', /is not valid YAML/],
      ['broken.json', 'allow: x', /is not valid JSON.*name the file \.yaml or \.yml for YAML/],
      ['rule.yaml', 'allow: 10.0.0.0/33:80\n', /invalid prefix length/],
      ['list.yaml', '- 1\n- 2\n', /must hold an object of settings/],
    ];
    cases.push(['', '', /cannot read --config \/nonexistent\/agent\.yaml/]);
    const runs = await Promise.all(
      cases.map(async ([name, text, message]) => {
        let config = '/nonexistent/agent.yaml';
        if (name) {
          config = join(stateDir, '..', `${gatewayId}-${name}`);
          await writeFile(config, text);
        }
        const agent = harness.spawnAgent(gatewayId, stateDir, ['--config', config]);
        const { code } = await within(agent.exited, 15_000, `agent with ${config}`);
        return { code, output: agent.output(), message };
      }),
    );
    for (const { code, output, message } of runs) {
      expect(code).toBe(1);
      expect(output).toMatch(message);
    }
    expect(harness.hub.live(gatewayId)).toBeUndefined();
  });
});
