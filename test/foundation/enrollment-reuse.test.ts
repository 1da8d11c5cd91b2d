/** A reused enrollment token: the agent hears that tokens are single-use and where to get one. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGatewayKeyAndCsr } from '../../src/protocol/csr.js';
import {
  api,
  bootstrap,
  DRIVERS,
  startTestPlatform,
  type Account,
  type TestPlatform,
} from '../helpers/platform.js';

describe.each(DRIVERS)('enrollment token reuse on %s', (driver) => {
  let tp: TestPlatform;
  let admin: Account;

  beforeAll(async () => {
    tp = await startTestPlatform(driver);
    admin = await bootstrap(tp);
  });
  afterAll(() => tp?.close());

  it('a second gateway with the same token gets 401 naming the web UI page and the API', async () => {
    const made = await admin.client.post('/api/v1/gateways/enrollment-tokens', {});
    expect(made.status, made.text).toBe(201);
    const enroll = async (name: string, token: string) =>
      api(tp).post('/api/v1/gateways/enroll', {
        token,
        name,
        csr: (await createGatewayKeyAndCsr(name)).csrPem,
      });
    const first = await enroll('gw-first', made.body.token);
    expect(first.status, first.text).toBe(201);
    for (const [name, token] of [
      ['gw-second', made.body.token],
      ['gw-unknown', 'gpe_not-a-real-token'],
    ]) {
      const refused = await enroll(name!, token!);
      expect(refused.status).toBe(401);
      expect(refused.body.error.code).toBe('invalid_enrollment_token');
      expect(refused.body.error.message).toBe(
        'This enrollment token is unknown, expired, revoked or already used. Enrollment tokens ' +
          'are single-use: create a new one in the web UI (Enrollment tokens, in the menu) or with ' +
          'POST /api/v1/gateways/enrollment-tokens.',
      );
    }
  });
});
