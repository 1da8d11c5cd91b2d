/**
 * Real `gatepool` processes from source (test/helpers/cli-entry.ts), as an operator runs them:
 * a server on free loopback ports (read from its start banner), and one-shot commands.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { api, type ApiClient } from '../helpers/platform.js';
import { nodeEntry } from '../helpers/entry.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

export function gatepool(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const started = Date.now();
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [...nodeEntry('cli'), ...args],
      {
        cwd: ROOT,
        timeout: 120_000,
        maxBuffer: 16 * 1024 * 1024,
        env: { ...process.env, GATEPOOL_LOG_LEVEL: 'silent', ...env },
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr), ms: Date.now() - started });
      },
    );
  });
}

export interface ServerProcess {
  proc: ChildProcess;
  pid: number;
  url: string;
  api(token?: string): ApiClient;
  /** Everything it printed so far (stdout and stderr). */
  output(): string;
  /** Resolves with the exit code (or signal name) once it has exited. */
  exited: Promise<number | string>;
  kill(signal?: NodeJS.Signals): Promise<number | string>;
}

/** Starts `gatepool server` with env (GATEPOOL_DATA_DIR or DATABASE_URL …) on ports 0. */
export async function startServer(
  env: Record<string, string>,
  timeoutMs = 90_000,
): Promise<ServerProcess> {
  const proc = spawn(process.execPath, [...nodeEntry('cli'), 'server'], {
    cwd: ROOT,
    env: {
      ...process.env,
      GATEPOOL_HOST: '127.0.0.1',
      GATEPOOL_PORT: '0',
      GATEPOOL_TUNNEL_PORT: '0',
      GATEPOOL_TUNNEL_HOSTNAME: '127.0.0.1',
      GATEPOOL_LOG_LEVEL: 'warn',
      // Tests stand in for a proxy on loopback (distinct client IPs for the login limits).
      GATEPOOL_TRUST_PROXY: 'loopback',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  proc.stderr?.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | string>((resolve) =>
    proc.on('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')),
  );
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`gatepool server did not start in ${timeoutMs} ms:\n${out}`));
    }, timeoutMs);
    const check = () => {
      const m = /Open\s+(http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    proc.stdout?.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`gatepool server exited (${code}) before starting:\n${out}`));
    });
  });
  return {
    proc,
    pid: proc.pid!,
    url,
    api: (token) => api(url, token),
    output: () => out,
    exited,
    async kill(signal = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
}

/** Every identity name of the org, following the cursor (nothing silently cut). */
export async function identityNames(token: string, server: ServerProcess): Promise<Set<string>> {
  const names = new Set<string>();
  let cursor: string | null = null;
  for (let page = 0; page < 100; page++) {
    const res = await server
      .api(token)
      .get(`/api/v1/identities?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    if (res.status !== 200) throw new Error(`GET identities answered ${res.status}: ${res.text}`);
    for (const i of res.body.items as { name: string }[]) names.add(i.name);
    cursor = res.body.nextCursor;
    if (!cursor) return names;
  }
  throw new Error('more than 100 pages of identities');
}
