/**
 * An enrollment token whose pool was deleted still enrolls, but not silently: the enrollment
 * answer warns, the real agent prints the warning, and the token listing marks the pool missing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentFleet } from '../helpers/gateway-agent.js';
import {
  bootstrap,
  issueTestLicense,
  startTestPlatform,
  type Account,
  type TestPlatform,
} from '../helpers/platform.js';

describe('enrollment with a token whose pool was deleted', () => {
  let tp: TestPlatform;
  let admin: Account;
  const fleet = new AgentFleet();

  beforeAll(async () => {
    tp = await startTestPlatform('pglite');
    admin = await bootstrap(tp);
    const key = await issueTestLicense({ plan: 'enterprise', org: admin.orgId });
    expect((await admin.client.put('/api/v1/license', { key })).status).toBe(200);
  });
  afterAll(async () => {
    await fleet.close();
    await tp?.close();
  });

  it('warns in the answer, in the agent output and in the token list', async () => {
    const kept = (await admin.client.post('/api/v1/gateway-pools', { name: 'kept' })).body
      .id as string;
    const gone = (await admin.client.post('/api/v1/gateway-pools', { name: 'tmpp' })).body
      .id as string;
    const created = await admin.client.post('/api/v1/gateways/enrollment-tokens', {
      poolIds: ['kept', 'tmpp'],
    });
    expect(created.status).toBe(201);
    expect((await admin.client.delete('/api/v1/gateway-pools/tmpp')).status).toBe(204);

    const listed = (await admin.client.get('/api/v1/gateways/enrollment-tokens')).body.items as {
      id: string;
      poolIds: string[];
      missingPoolIds: string[];
    }[];
    const token = listed.find((t) => t.id === created.body.id)!;
    expect(token.poolIds.sort()).toEqual([kept, gone].sort());
    expect(token.missingPoolIds).toEqual([gone]);

    const agent = await fleet.start({
      platformUrl: tp.url,
      token: created.body.token as string,
      name: 'tmpgw',
      allow: ['127.0.0.1:5432'],
    });
    await agent.waitForOutput(/connected: tunnel up/, 20_000);
    const warnings = agent
      .output()
      .split('\n')
      .filter((l) => l.includes('no longer exists'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(
      `pool ${gone} of this token no longer exists; enrolled without it`,
    );
    expect(agent.output()).toContain('enrolled as gateway "tmpgw"');

    // It did join the pool that still exists.
    const members = await admin.client.get('/api/v1/gateway-pools/kept');
    expect(JSON.stringify(members.body)).toContain('tmpgw');
  }, 60_000);
});
