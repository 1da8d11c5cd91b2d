/**
 * `gatepool connect` end to end (issue 14): the CLI as a user runs it, the platform, a pool of
 * two real gateway processes, and the machine's PostgreSQL as the target, reached with real
 * psql and pgbench. PGlite only: the database driver plays no part in the stream path (the API
 * is covered on both drivers by api.test.ts).
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dialTarget } from '../../src/client/dialer.js';
import { addUser, createSecondOrg, type Account } from '../helpers/platform.js';
import { within } from '../tunnel/harness.js';
import {
  createPgbenchDatabase,
  gatepool,
  PG,
  psql,
  startConnect,
  startScenario,
  type AccessScenario,
} from './scenario.js';

describe('gatepool connect through a pool of two real gateways', () => {
  let s: AccessScenario;
  let member: Account;
  let env: Record<string, string>;
  let benchDb: { name: string; drop(): Promise<void> };

  beforeAll(async () => {
    [s, benchDb] = await Promise.all([startScenario(2), createPgbenchDatabase()]);
    member = await addUser(s.tp, s.admin, 'member');
    env = { GATEPOOL_PLATFORM: s.tp.url, GATEPOOL_TOKEN: member.token };
    await s.target({ name: 'pg', host: PG.host, port: PG.port, protocol: 'postgres' });
    await s.target({ name: 'bulk', host: '127.0.0.1', port: s.hash.port, protocol: 'tcp' });
    await s.target({ name: 'walled', host: '127.0.0.1', port: s.deniedPort, protocol: 'tcp' });
  }, 90_000);
  afterAll(async () => {
    await s?.close();
    await benchDb?.drop();
  });

  it('psql and pgbench work unchanged through the forwarded port', async () => {
    const c = await startConnect('pg', env);
    try {
      expect(c.line).toMatch(
        /^Forwarding 127\.0\.0\.1:\d+ to pg \(postgres 127\.0\.0\.1:5432 via gateway pool "dc1"\); connect with: psql "host=127\.0\.0\.1 port=\d+"$/,
      );
      const q = await psql(c.port, 'select 6 * 7');
      expect(q.stderr).toBe('');
      expect(q.stdout.trim()).toBe('42');
      const bench = await new Promise<{ code: number; out: string }>((resolve) =>
        execFile(
          'pgbench',
          [
            '-n',
            '-S',
            '-c',
            '4',
            '-t',
            '50',
            '-h',
            '127.0.0.1',
            '-p',
            String(c.port),
            '-U',
            'postgres',
            benchDb.name,
          ],
          { timeout: 60_000 },
          (err, stdout, stderr) => resolve({ code: err ? 1 : 0, out: stdout + stderr }),
        ),
      );
      expect(bench.out).toMatch(/number of transactions actually processed: 200\/200/);
      expect(bench.code).toBe(0);
    } finally {
      await c.stop();
    }
  });
});
