/**
 * The data directory lock: exclusive, released with its holder, stale sockets replaced once, and
 * held by its lock file when the socket is deleted; a stale lock file (dead, zombie or reused
 * pid) never blocks.
 */
import { execFileSync, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  DataDirInUseError,
  LOCK_FILE_NAME,
  lockDataDir,
  request,
  SOCKET_NAME,
} from './datadir-lock.js';

/** Field 22 of /proc/PID/stat: the process's start time. */
const startOf = (pid: number) => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!;
};
const boot = () => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();

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

  it('still refuses, naming the holder, when a person deletes its socket', async () => {
    const data = join(dir, 'data');
    const lock = await lockDataDir(data);
    const file = join(data, LOCK_FILE_NAME);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({
      pid: process.pid,
      start: startOf(process.pid),
      boot: boot(),
    });
    unlinkSync(lock.socketPath);
    const err = await lockDataDir(data).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataDirInUseError);
    expect(err).toMatchObject({ holderPid: process.pid, socketGone: true });
    expect((err as Error).message).toContain(`(pid ${process.pid}), whose lock socket`);
    await lock.release();
    expect(existsSync(file)).toBe(false);
    await (await lockDataDir(data)).release();
  });

  it('replaces a lock file whose process is gone, a zombie, or another one with its pid', async () => {
    const data = join(dir, 'data');
    mkdirSync(data, { mode: 0o700 });
    const file = join(data, LOCK_FILE_NAME);
    // A zombie: a child that exited and that its parent (sleeping) has not reaped.
    const parent = spawn('python3', [
      '-c',
      'import os,sys,time\npid=os.fork()\nif pid==0: os._exit(0)\nprint(pid,flush=True)\ntime.sleep(30)',
    ]);
    const zombie = await new Promise<number>((resolve) =>
      parent.stdout.once('data', (d: Buffer) => resolve(Number(String(d).trim()))),
    );
    // The child may not have run its exit yet when its pid is printed (a busy machine).
    const isZombie = () =>
      /^ Z /.test(readFileSync(`/proc/${zombie}/stat`, 'utf8').split(')').pop()!);
    for (let i = 0; i < 100 && !isZombie(); i++) await new Promise((r) => setTimeout(r, 50));
    try {
      const stale = [
        { pid: 2 ** 22 + 1, start: '1', boot: boot() }, // above pid_max: no such process
        { pid: process.pid, start: '1', boot: boot() }, // this pid, but started at another time
        { pid: process.pid, start: startOf(process.pid), boot: 'another-boot' },
        { pid: zombie, start: startOf(zombie), boot: boot() },
      ];
      for (const owner of stale) {
        writeFileSync(file, JSON.stringify(owner), { mode: 0o600 });
        const lock = await lockDataDir(data);
        expect(JSON.parse(readFileSync(file, 'utf8')).start, JSON.stringify(owner)).toBe(
          startOf(process.pid),
        );
        await lock.release();
      }
      // The very process that wrote it, alive: held (no socket: it says so).
      writeFileSync(
        file,
        JSON.stringify({ pid: parent.pid, start: startOf(parent.pid!), boot: boot() }),
      );
      const err = await lockDataDir(data).catch((e: unknown) => e);
      expect(err).toMatchObject({ holderPid: parent.pid, socketGone: true });
      expect(existsSync(file)).toBe(true);
    } finally {
      parent.kill('SIGKILL');
    }
  });
});
