/**
 * A gateway deleted on the platform (issue 11.5): its real agent process, enrolled through the
 * API, prints one line saying so and how to come back, and exits 3 — on both database drivers.
 * A restarted agent on the same state is refused the same way (it does not retry forever).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentFleet } from '../helpers/gateway-agent.js';
import { bootstrap, DRIVERS, startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { within } from '../tunnel/harness.js';

const EXIT_REVOKED = 3;

describe.each(DRIVERS)('deleted gateway on %s', (driver) => {
  let tp: TestPlatform;
  const fleet = new AgentFleet();

  beforeAll(async () => {
    tp = await startTestPlatform(driver);
  });
  afterAll(async () => {
    await fleet.close();
    await tp?.close();
  });

  it('its agent prints one line and exits 3; started again, it exits the same way', async () => {
    const admin = await bootstrap(tp.url);
    const token = (await admin.client.post('/api/v1/gateways/enrollment-tokens', {})).body
      .token as string;
    const agent = await fleet.start({
      platformUrl: tp.url,
      token,
      name: 'doomed',
      allow: ['127.0.0.1:5432'],
    });
    await agent.waitForOutput(/connected: tunnel up/, 15_000);
    const listed = (await admin.client.get('/api/v1/gateways')).body.items as Array<{
      id: string;
      name: string;
    }>;
    const gatewayId = listed.find((gw) => gw.name === 'doomed')?.id ?? '';
    expect(gatewayId).not.toBe('');

    const deleted = await admin.client.delete(`/api/v1/gateways/${gatewayId}`);
    expect(deleted.status).toBe(200);
    const { code } = await within(agent.exited, 5000, 'deleted agent exit');
    expect(code).toBe(EXIT_REVOKED);
    const lines = agent.output().trim().split('\n');
    expect(lines.filter((line) => /deleted or revoked/.test(line))).toEqual([lines.at(-1)]);
    expect(lines.at(-1)).toMatch(
      new RegExp(
        `gateway "doomed" \\(${gatewayId}\\) was deleted or revoked on the platform ` +
          '\\(gateway deleted\\); stopping\\. To connect this host again, enroll it with a new ' +
          'token and a fresh --state-dir\\.$',
      ),
    );

    // A supervisor restarting it: refused at its first attempt, with the same verdict.
    const again = await fleet.start({
      platformUrl: tp.url,
      name: 'doomed',
      stateDir: agent.stateDir,
    });
    expect((await within(again.exited, 10_000, 'restarted agent exit')).code).toBe(EXIT_REVOKED);
    expect(again.output()).toMatch(
      /was deleted or revoked on the platform \(gateway \S+ is unknown, deleted or its certificate was replaced\)/,
    );
    expect(again.output()).not.toMatch(/reconnecting in|retrying/i);
  });
});
