/**
 * Operator paths with real processes: a port clash refused before anything is created; a first
 * start that says what it is doing and, interrupted, leaves no lock behind; backups that refuse
 * to land in the data directory and that never both claim one file.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatepool, startServer, type ServerProcess } from './processes.js';
import { nodeEntry } from '../helpers/entry.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

describe('server start and backups, with real processes', () => {
  let dir: string;
  let data: string;
  let server: ServerProcess | undefined;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'gatepool-startbk-'));
    data = join(dir, 'data');
  });
  afterAll(async () => {
    await server?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses GATEPOOL_PORT equal to GATEPOOL_TUNNEL_PORT before creating anything', async () => {
    const clash = join(dir, 'portclash');
    const run = await gatepool(['server'], {
      GATEPOOL_HOST: '127.0.0.1',
      GATEPOOL_PORT: '18103',
      GATEPOOL_TUNNEL_PORT: '18103',
      GATEPOOL_DATA_DIR: clash,
    });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('GATEPOOL_PORT and GATEPOOL_TUNNEL_PORT must differ (both 18103)');
    expect(run.stderr).not.toContain('in use');
    expect(existsSync(clash)).toBe(false);
    // The flags are the same settings.
    const flags = await gatepool(
      ['server', '--port', '18107', '--tunnel-port', '18107', '--data-dir', clash],
      { GATEPOOL_HOST: '127.0.0.1' },
    );
    expect(flags.code).toBe(1);
    expect(flags.stderr).toContain('must differ (both 18107)');
    expect(existsSync(clash)).toBe(false);
  }, 60_000);

  it('says it is preparing a new database, and Ctrl-C then removes the lock', async () => {
    const proc = spawn(process.execPath, [...nodeEntry('cli'), 'server'], {
      cwd: ROOT,
      env: {
        ...process.env,
        GATEPOOL_HOST: '127.0.0.1',
        GATEPOOL_PORT: '0',
        GATEPOOL_TUNNEL_PORT: '0',
        GATEPOOL_LOG_LEVEL: 'warn',
        GATEPOOL_DATA_DIR: data,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    proc.stdout.on('data', (c: Buffer) => (out += c.toString()));
    proc.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const exited = new Promise<number | string>((resolve) =>
      proc.on('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')),
    );
    try {
      for (let i = 0; i < 300 && !out.includes('Preparing'); i++)
        await new Promise((r) => setTimeout(r, 100));
      expect(out).toContain(
        `Preparing the embedded database in ${data} (first start; this takes a few seconds)`,
      );
      // Into the slow part (the lock is taken, PGlite is initialising).
      for (let i = 0; i < 100 && !existsSync(join(data, 'gatepool.sock')); i++)
        await new Promise((r) => setTimeout(r, 50));
      expect(existsSync(join(data, 'gatepool.sock'))).toBe(true);
      await new Promise((r) => setTimeout(r, 1000));
      expect(out).not.toContain('gatepool is running');
      proc.kill('SIGINT');
      const code = await Promise.race([
        exited,
        new Promise((r) => setTimeout(() => r('still running'), 15_000)),
      ]);
      expect(code, out).toBe(130);
      expect(out).toContain('SIGINT during start');
    } finally {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    }
    expect(existsSync(join(data, 'gatepool.lock'))).toBe(false);
    expect(existsSync(join(data, 'gatepool.sock'))).toBe(false);
    expect(existsSync(join(data, 'pglite', 'PG_VERSION'))).toBe(false);

    // The next start prepares it again from nothing, and serves.
    server = await startServer({ GATEPOOL_DATA_DIR: data });
    expect(server.output()).toContain('Preparing the embedded database');
    expect((await server.api().get('/readyz')).status).toBe(200);
  }, 240_000);

  it('refuses --out inside the data directory, also through a symbolic link', async () => {
    const env = { GATEPOOL_DATA_DIR: data };
    const link = join(dir, 'link-to-data');
    symlinkSync(data, link);
    for (const out of [
      join(data, 'x.tar.gz'),
      join(data, 'pglite', 'evil.tar.gz'),
      join(data, 'backups', 'mine.tar.gz'),
      join(link, 'y.tar.gz'),
    ]) {
      const run = await gatepool(['backup', '--out', out], env);
      expect(run.code, `${out}: ${run.stdout}${run.stderr}`).toBe(1);
      expect(run.stderr.trim().split('\n')).toHaveLength(1);
      expect(run.stderr).toContain(`is inside the data directory ${data}`);
      expect(existsSync(out)).toBe(false);
    }
    // Next to it is fine.
    mkdirSync(join(dir, 'out'));
    const ok = await gatepool(['backup', '--out', join(dir, 'out', 'ok.tar.gz')], env);
    expect(ok.code, ok.stderr).toBe(0);
  }, 120_000);

  it('lets only one of several concurrent backups claim one path', async () => {
    const out = join(dir, 'out', 'same.tar.gz');
    const runs = await Promise.all(
      [0, 1, 2].map(() => gatepool(['backup', '--out', out], { GATEPOOL_DATA_DIR: data })),
    );
    const won = runs.filter((r) => r.code === 0);
    const lost = runs.filter((r) => r.code !== 0);
    expect(won, runs.map((r) => r.stderr).join('\n')).toHaveLength(1);
    expect(won[0]!.stdout).toContain(`wrote ${out}`);
    for (const r of lost) {
      expect(r.code).toBe(1);
      expect(r.stdout).not.toContain('wrote');
      expect(r.stderr).toContain(`${out} exists`);
    }
    expect(existsSync(out)).toBe(true);
    // --force still replaces it (the old one moved aside).
    const forced = await gatepool(['backup', '--out', out, '--force'], { GATEPOOL_DATA_DIR: data });
    expect(forced.code, forced.stderr).toBe(0);
    expect(existsSync(`${out}.old`)).toBe(true);
  }, 180_000);
});
