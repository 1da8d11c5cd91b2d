/**
 * `gatepool login` as a user meets it (QA issue 6), as real CLI processes: the platform is
 * checked before anything is asked, a wrong password and a refused token each say what
 * happened and that nothing was saved, never "run gatepool login" again.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  bootstrap,
  DRIVERS,
  startTestPlatform,
  type Account,
  type TestPlatform,
} from '../helpers/platform.js';
import { within } from '../tunnel/harness.js';
import { CLI_ENTRY, freePort, ROOT } from './scenario.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `gatepool login ARGS`, writing `input` to stdin; stdin stays open when input is null. */
async function login(
  args: string[],
  env: Record<string, string>,
  input: string | null,
): Promise<Run> {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI_ENTRY, 'login', ...args], {
    cwd: ROOT,
    env: { ...process.env, GATEPOOL_PLATFORM: '', GATEPOOL_TOKEN: '', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  if (input !== null) child.stdin.end(input);
  try {
    const [code] = (await within(once(child, 'exit'), 30_000, 'gatepool login to exit')) as [
      number | null,
    ];
    return { code, stdout, stderr };
  } finally {
    child.kill('SIGKILL');
  }
}

describe.each(DRIVERS)('gatepool login on %s', (driver) => {
  let tp: TestPlatform;
  let admin: Account;
  let xdg: string;

  beforeAll(async () => {
    tp = await startTestPlatform(driver);
    admin = await bootstrap(tp);
    xdg = await mkdtemp(join(tmpdir(), 'gatepool-login-'));
  });
  afterAll(async () => {
    await tp?.close();
    if (xdg) await rm(xdg, { recursive: true, force: true });
  });

  it('an unreachable platform is said before any prompt; a wrong password and a refused token say so and save nothing', async () => {
    const env = { XDG_CONFIG_HOME: xdg };
    const nobody = `http://127.0.0.1:${await freePort()}`;
    // Something else listens there (a wrong port or URL): it answers, but not as a platform.
    const other: Server = createServer((_req, res) => res.writeHead(404).end('not here'));
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    const elsewhere = `http://127.0.0.1:${(other.address() as AddressInfo).port}`;
    const [unreachable, wrongPassword, badToken, notPlatform] = await Promise.all([
      // stdin left open: a prompt would wait for it, and the run would time out.
      login(['--platform', nobody], env, null),
      login(['--platform', tp.url], env, `${admin.email}\nnot-the-password\n`),
      login(['--platform', tp.url, '--token', 'gpt_not-a-real-token'], env, null),
      login(['--platform', elsewhere], env, null),
    ]).finally(() => other.close());
    tp.platform.ctx.limits.loginPerIp.reset('127.0.0.1');

    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).not.toMatch(/Email|Password/);
    expect(unreachable.stderr.trim()).toBe(
      `gatepool login: cannot reach the platform at ${nobody} (ECONNREFUSED)`,
    );

    expect(notPlatform.code).toBe(1);
    expect(notPlatform.stderr.trim()).toBe(
      `gatepool login: ${elsewhere} does not answer as a gatepool platform (GET /healthz: HTTP 404): check --platform`,
    );

    expect(wrongPassword.code).toBe(1);
    expect(wrongPassword.stderr).toMatch(
      /\ngatepool login: email or password is incorrect; nothing was saved\n$/,
    );
    expect(wrongPassword.stderr).not.toMatch(/run .gatepool login/);

    expect(badToken.code).toBe(1);
    expect(badToken.stderr.trim()).toMatch(
      /^gatepool login: the platform refused this token \(expired, revoked or unknown\); nothing was saved\. Create a new one/,
    );
    expect(existsSync(join(xdg, 'gatepool', 'config.json'))).toBe(false);

    // The same run with the right password works, so the refusals above were about the input.
    const right = await login(['--platform', tp.url], env, `${admin.email}\n${admin.password}\n`);
    tp.platform.ctx.limits.loginPerIp.reset('127.0.0.1');
    expect(right.stderr).not.toMatch(/gatepool login:/);
    expect(right.code).toBe(0);
    expect(existsSync(join(xdg, 'gatepool', 'config.json'))).toBe(true);
  }, 60_000);
});
