/**
 * A PostgreSQL cluster of the test's own (initdb + pg_ctl, user `postgres`, a free loopback
 * port, a temporary directory), so a test may restart and stop it; the shared server on :5432
 * is never touched.
 */
import { execFileSync } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface PrivatePostgres {
  url: string;
  port: number;
  restart(): void;
  stop(): void;
  start(): void;
  destroy(): void;
}

function bindir(): string | undefined {
  try {
    return execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim();
  } catch {
    return undefined;
  }
}

export const hasPgBinaries = () => bindir() !== undefined;

async function freePort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((r) => probe.close(() => r()));
  return port;
}

function postgresUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  return { uid, gid };
}

export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const bin = bindir();
  if (!bin) throw new Error('pg_config not found: PostgreSQL server binaries are needed');
  const dir = mkdtempSync(join(tmpdir(), 'gatepool-pg-'));
  const user = postgresUser();
  if (user) chownSync(dir, user.uid, user.gid);
  const run = (tool: string, args: string[]) => {
    const [cmd, full] = user
      ? ['runuser', ['-u', 'postgres', '--', join(bin, tool), ...args]]
      : [join(bin, tool), args];
    return execFileSync(cmd, full as string[], {
      encoding: 'utf8',
      stdio: 'pipe',
      timeout: 60_000,
    });
  };
  const data = join(dir, 'data');
  const port = await freePort();
  run('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '--no-instructions']);
  const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`;
  const pgCtl = (...args: string[]) =>
    run('pg_ctl', ['-D', data, '-l', join(dir, 'log'), '-o', opts, '-w', '-t', '30', ...args]);
  pgCtl('start');
  run('psql', [
    '-h',
    '127.0.0.1',
    '-p',
    String(port),
    '-U',
    'postgres',
    '-c',
    'CREATE DATABASE gatepool',
  ]);
  return {
    url: `postgres://postgres@127.0.0.1:${port}/gatepool`,
    port,
    restart: () => void pgCtl('restart', '-m', 'fast'),
    stop: () => void pgCtl('stop', '-m', 'fast'),
    start: () => void pgCtl('start'),
    destroy() {
      try {
        pgCtl('stop', '-m', 'immediate');
      } catch {
        // already stopped
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
