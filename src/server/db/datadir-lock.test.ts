/** The data directory lock: exclusive, released with its holder, stale sockets replaced once. */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DataDirInUseError, lockDataDir, request, SOCKET_NAME } from './datadir-lock.js';

describe('lockDataDir', () => {
  let dir: string;
  beforeEach(() => void (dir = mkdtempSync(join(tmpdir(), 'gatepool-lock-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('is exclusive, private, tells who holds it, and is free again after release', async () => {
    const data = join(dir, 'data');
    const lock = await lockDataDir(data);
    expect(statSync(data).mode & 0o777).toBe(0o700);
    expect(statSync(lock.socketPath).mode & 0o777).toBe(0o600);
    const err = await lockDataDir(data).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataDirInUseError);
    expect((err as DataDirInUseError).holderPid).toBe(process.pid);
    expect((err as Error).message).toContain(`the data directory ${data} is in use`);

    // Until the platform serves, requests other than hello are told to retry.
    const early = await request(lock.socketPath, { op: 'backup' }, 2000);
    expect(early.body).toMatchObject({ ok: false, error: expect.stringMatching(/still starting/) });
    lock.serve(async (req) => ({ body: { ok: true, echo: req.op }, data: Buffer.from('abc') }));
    const served = await request(lock.socketPath, { op: 'x' }, 2000);
    expect(served.body).toMatchObject({ ok: true, echo: 'x' });
    expect(served.data?.toString()).toBe('abc');

    await lock.release();
    expect(existsSync(lock.socketPath)).toBe(false);
    await (await lockDataDir(data)).release();
  });

  it('replaces a stale socket exactly once when several openers race for it', async () => {
    mkdirSync(join(dir, 'data'), { mode: 0o700 });
    const path = join(dir, 'data', SOCKET_NAME);
    // What a SIGKILLed holder leaves: the socket file, nobody accepting on it.
    execFileSync('python3', [
      '-c',
      'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])',
      path,
    ]);
    expect(statSync(path).isSocket()).toBe(true);
    const results = await Promise.allSettled(
      Array.from({ length: 8 }, () => lockDataDir(join(dir, 'data'))),
    );
    const won = results.filter((r) => r.status === 'fulfilled');
    expect(won).toHaveLength(1);
    for (const r of results)
      if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(DataDirInUseError);
    await (
      won[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof lockDataDir>>>
    ).value.release();
  });
});
