/**
 * `gatepool login` for a person whose password the inviting admin chose (QA4 F-invite-pw).
 * Without a terminal nobody can choose a new one: the command says so in one line, ends the
 * session it opened and saves nothing. `gatepool whoami` on such a session says it too.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { and, eq, isNull } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sessions, users } from '../../src/server/db/schema.js';
import { ROOT } from '../access/scenario.js';
import {
  api,
  bootstrap,
  DRIVERS,
  login,
  startTestPlatform,
  type Account,
  type TestPlatform,
} from '../helpers/platform.js';
import { within } from '../tunnel/harness.js';
import { nodeEntry } from '../helpers/entry.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `gatepool ARGS` with `input` on a piped (not a terminal) stdin. */
async function cli(args: string[], env: Record<string, string>, input: string): Promise<Run> {
  const child = spawn(process.execPath, [...nodeEntry('cli'), ...args], {
    cwd: ROOT,
    env: { ...process.env, GATEPOOL_PLATFORM: '', GATEPOOL_TOKEN: '', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  child.stdin.end(input);
  try {
    const [code] = (await within(once(child, 'exit'), 30_000, `gatepool ${args[0]}`)) as [
      number | null,
    ];
    return { code, stdout, stderr };
  } finally {
    child.kill('SIGKILL');
  }
}

/**
 * `gatepool ARGS` on a terminal (util-linux `script` gives it a pty): each answer is typed once
 * its prompt shows, as a person would.
 */
async function onTerminal(
  args: string[],
  env: Record<string, string>,
  answers: [prompt: string, answer: string][],
): Promise<Run> {
  const command = [process.execPath, ...nodeEntry('cli'), ...args]
    .map((a) => `'${a.replaceAll("'", "'\\''")}'`)
    .join(' ');
  const child = spawn('script', ['-qefc', command, '/dev/null'], {
    cwd: ROOT,
    env: { ...process.env, GATEPOOL_PLATFORM: '', GATEPOOL_TOKEN: '', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let answered = 0;
  let seen = 0;
  child.stdout.setEncoding('utf8').on('data', (c: string) => {
    stdout += c;
    const next = answers[answered];
    const at = next ? stdout.indexOf(next[0], seen) : -1;
    if (next && at >= 0) {
      seen = at + next[0].length;
      answered++;
      child.stdin.write(`${next[1]}\r`);
    }
  });
  try {
    const [code] = (await within(once(child, 'exit'), 30_000, `gatepool ${args[0]}`)) as [
      number | null,
    ];
    return { code, stdout, stderr: '' };
  } finally {
    child.kill('SIGKILL');
  }
}

describe.each(DRIVERS)('gatepool login with a password someone else chose on %s', (driver) => {
  let tp: TestPlatform;
  let admin: Account;
  let xdg: string;

  beforeAll(async () => {
    tp = await startTestPlatform(driver);
    admin = await bootstrap(tp);
    xdg = await mkdtemp(join(tmpdir(), 'gatepool-first-pw-'));
  });
  afterAll(async () => {
    await tp?.close();
    if (xdg) await rm(xdg, { recursive: true, force: true });
  });

  it('without a terminal: one line saying to change it first, the session ended, nothing saved', async () => {
    const email = `cli-${driver}@example.com`;
    const invited = await admin.client.post('/api/v1/users', {
      email,
      password: 'admin-chose-this',
      role: 'member',
    });
    expect(invited.status).toBe(201);
    const env = { XDG_CONFIG_HOME: xdg };

    const run = await cli(
      ['login', '--platform', tp.url, '--email', email],
      env,
      'admin-chose-this\n',
    );
    tp.platform.ctx.limits.loginPerIp.reset('127.0.0.1');
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(
      'Password: \n' +
        'gatepool login: your password was set by the admin who invited you: change it first, ' +
        'in the web UI or with `gatepool login` on a terminal; nothing was saved\n',
    );
    expect(run.stdout).toBe('');
    expect(existsSync(join(xdg, 'gatepool', 'config.json'))).toBe(false);
    const [user] = await tp.db.select().from(users).where(eq(users.email, email));
    const live = await tp.db
      .select()
      .from(sessions)
      .where(and(eq(sessions.userId, user!.id), isNull(sessions.revokedAt)));
    expect(live).toEqual([]);

    // whoami on such a session (a token from the API) says what is missing.
    const session = await login(tp, email, 'admin-chose-this');
    const who = await cli(
      ['whoami'],
      { GATEPOOL_PLATFORM: tp.url, GATEPOOL_TOKEN: session.token },
      '',
    );
    expect(who.code, who.stderr).toBe(0);
    expect(who.stdout).toContain(
      'Password      must be changed first: it was set by the admin who invited you',
    );

    // Once changed, the CLI logs in as usual and whoami has no such line.
    const changed = await api(tp, session.token).post('/api/v1/auth/password', {
      currentPassword: 'admin-chose-this',
      newPassword: 'the-persons-own-pw',
    });
    expect(changed.status).toBe(200);
    const again = await cli(
      ['login', '--platform', tp.url, '--email', email],
      env,
      'the-persons-own-pw\n',
    );
    tp.platform.ctx.limits.loginPerIp.reset('127.0.0.1');
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/^Logged in to .* as cli-/);
    const whoNow = await cli(['whoami'], env, '');
    expect(whoNow.code, whoNow.stderr).toBe(0);
    expect(whoNow.stdout).not.toContain('Password');
  }, 90_000);

  it('on a terminal: asks for a new password twice, changes it, then saves the login', async () => {
    const email = `tty-${driver}@example.com`;
    const invited = await admin.client.post('/api/v1/users', {
      email,
      password: 'admin-chose-this',
      role: 'viewer',
    });
    expect(invited.status).toBe(201);
    const dir = await mkdtemp(join(tmpdir(), 'gatepool-first-pw-tty-'));
    try {
      const run = await onTerminal(
        ['login', '--platform', tp.url, '--email', email],
        { XDG_CONFIG_HOME: dir },
        [
          ['Password: ', 'admin-chose-this'],
          ['New password (at least 12 characters): ', 'short'],
          ['New password again: ', 'short'],
          ['New password (at least 12 characters): ', 'chosen-on-a-tty'],
          ['New password again: ', 'chosen-on-a-tty'],
        ],
      );
      tp.platform.ctx.limits.loginPerIp.reset('127.0.0.1');
      expect(run.code, run.stdout).toBe(0);
      expect(run.stdout).toContain(
        'Your password was set by the admin who invited you: choose your own before going on.',
      );
      expect(run.stdout).toContain('the new password is shorter than 12 characters; try again.');
      expect(run.stdout).toContain('Password changed.');
      expect(run.stdout).toMatch(/Logged in to .* as tty-/);
      // Never echoed.
      expect(run.stdout).not.toContain('chosen-on-a-tty');
      expect(run.stdout).not.toContain('admin-chose-this');
      expect(existsSync(join(dir, 'gatepool', 'config.json'))).toBe(true);
      expect((await login(tp, email, 'chosen-on-a-tty')).body.passwordChangeRequired).toBe(false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 90_000);
});
