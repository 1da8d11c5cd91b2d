/**
 * The embedded database's lock with real processes: deleting the lock socket by hand no longer
 * lets a second process open the same files (the lock file still names the holder, and every
 * command that takes the lock refuses in one line naming its pid); after a SIGKILL the stale
 * lock file and socket never block the next start.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_PASSWORD } from '../helpers/platform.js';
import { gatepool, startServer, type ServerProcess } from './processes.js';

describe('the data directory lock, with real processes', () => {
  let dir: string;
  let data: string;
  let env: Record<string, string>;
  let server: ServerProcess | undefined;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'gatepool-lock-'));
    data = join(dir, 'data');
    env = { GATEPOOL_DATA_DIR: data };
  });
  afterAll(async () => {
    await server?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a second server and every locking command when the socket was deleted', async () => {
    server = await startServer(env);
    const backup = join(dir, 'good.tar.gz');
    const b = await gatepool(['backup', '--out', backup], env);
    expect(b.code, b.stderr).toBe(0);
    const lockFile = join(data, 'gatepool.lock');
    expect(JSON.parse(readFileSync(lockFile, 'utf8'))).toMatchObject({ pid: server.pid });

    unlinkSync(join(data, 'gatepool.sock'));
    const attempts: [string, string[], Record<string, string>][] = [
      ['server', ['server', '--host', '127.0.0.1', '--port', '0', '--tunnel-port', '0'], {}],
      ['migrate', ['migrate'], {}],
      ['backup', ['backup', '--out', join(dir, 'second.tar.gz')], {}],
      [
        'create-org',
        ['admin', 'create-org', '--name', 'Second', '--admin-email', 'second@example.com'],
        { GATEPOOL_ADMIN_PASSWORD: TEST_PASSWORD },
      ],
      ['restore', ['restore', '--from', backup, '--force'], {}],
    ];
    for (const [what, args, extra] of attempts) {
      const run = await gatepool(args, { ...env, ...extra });
      expect(run.code, `${what}: ${run.stdout}${run.stderr}`).toBe(1);
      const lines = run.stderr.trim().split('\n');
      expect(lines, `${what}: ${run.stderr}`).toHaveLength(1);
      expect(lines[0], what).toContain(`the data directory ${data} is in use`);
      expect(lines[0], what).toContain(`(pid ${server.pid})`);
      expect(lines[0], what).toContain('lock socket');
    }
    expect(existsSync(join(dir, 'second.tar.gz'))).toBe(false);
    // The holder never noticed, and still holds its lock file.
    expect((await server.api().get('/readyz')).status).toBe(200);
    expect(JSON.parse(readFileSync(lockFile, 'utf8'))).toMatchObject({ pid: server.pid });
  }, 240_000);

  it('starts after a SIGKILL: the stale lock file and socket are replaced', async () => {
    const killed = server!.pid;
    await server!.kill('SIGKILL');
    const lockFile = join(data, 'gatepool.lock');
    expect(JSON.parse(readFileSync(lockFile, 'utf8'))).toMatchObject({ pid: killed });
    server = await startServer(env);
    expect((await server.api().get('/readyz')).status).toBe(200);
    expect(JSON.parse(readFileSync(lockFile, 'utf8'))).toMatchObject({ pid: server.pid });
    expect(await server.kill('SIGTERM')).toBe(0);
    server = undefined;
    // A clean stop leaves neither behind.
    expect(existsSync(lockFile)).toBe(false);
    expect(existsSync(join(data, 'gatepool.sock'))).toBe(false);
  }, 240_000);
});
