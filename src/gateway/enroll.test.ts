import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { enroll, EnrollError } from './enroll.js';

/**
 * An HTTP server answering enrollment requests from a script of [status, headers, body], so the
 * agent's handling of rate limits can be tested without waiting out the platform's minute.
 */
async function scriptedPlatform(script: Array<[number, Record<string, string>, object]>) {
  const seen: number[] = [];
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      seen.push(Date.now());
      const [status, headers, body] = script.shift() ?? [500, {}, { error: 'script exhausted' }];
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify(body));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, seen, close: () => new Promise((resolve) => server.close(resolve)) };
}

const limited = (seconds: string): [number, Record<string, string>, object] => [
  429,
  { 'retry-after': seconds },
  {
    error: {
      code: 'too_many_requests',
      message: `Too many enrollment attempts; try again in ${seconds} s.`,
    },
  },
];
const invalidToken: [number, Record<string, string>, object] = [
  401,
  {},
  { error: { code: 'invalid_enrollment_token', message: 'the token is not valid' } },
];

describe('enroll and the platform rate limit', () => {
  let platform: Awaited<ReturnType<typeof scriptedPlatform>> | undefined;
  afterEach(async () => platform?.close());

  it("waits out a 429 as long as the platform's Retry-After says, then tries again", async () => {
    platform = await scriptedPlatform([limited('1'), limited('1'), invalidToken]);
    const waits: number[] = [];
    const err = await enroll({
      platform: platform.url,
      token: 'gpe_x',
      name: 'gw',
      onRateLimited: (seconds) => waits.push(seconds),
    }).catch((e: unknown) => e);
    // The answer after the waits is what the agent reports.
    expect(err).toBeInstanceOf(EnrollError);
    expect((err as Error).message).toBe('enrollment failed: the token is not valid');
    expect(waits).toEqual([1, 1]);
    const [first, second, third] = platform.seen as [number, number, number];
    expect(second - first).toBeGreaterThanOrEqual(950);
    expect(third - second).toBeGreaterThanOrEqual(950);
  });

  it('gives up with the platform message once waiting would outlast its patience', async () => {
    platform = await scriptedPlatform([limited('30')]);
    const waits: number[] = [];
    await expect(
      enroll({
        platform: platform.url,
        token: 'gpe_x',
        name: 'gw',
        rateLimitPatienceMs: 5_000,
        onRateLimited: (seconds) => waits.push(seconds),
      }),
    ).rejects.toThrow('enrollment failed: Too many enrollment attempts; try again in 30 s.');
    expect(waits).toEqual([]);
    expect(platform.seen).toHaveLength(1);
  });
});
