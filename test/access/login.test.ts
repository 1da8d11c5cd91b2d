/**
 * `gatepool login` as a user meets it (QA issue 6), as real CLI processes: the platform is
 * checked before anything is asked, a wrong password and a refused token each say what
 * happened and that nothing was saved, never "run gatepool login" again. Also which platform
 * a saved token may go to, and URLs that answer but are no platform.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  api,
  bootstrap,
  createSecondOrg,
  DRIVERS,
  startTestPlatform,
  type Account,
  type TestPlatform,
} from '../helpers/platform.js';
import { within } from '../tunnel/harness.js';
import { freePort, ROOT } from './scenario.js';
import { nodeEntry } from '../helpers/entry.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `gatepool login ARGS`, writing `input` to stdin; stdin stays open when input is null. */
function login(args: string[], env: Record<string, string>, input: string | null): Promise<Run> {
  return cli(['login', ...args], env, input);
}

/** Runs `gatepool ARGS` as `login` does. */
async function cli(
  args: string[],
  env: Record<string, string>,
  input: string | null,
): Promise<Run> {
  const child = spawn(process.execPath, [...nodeEntry('cli'), ...args], {
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
    const [code] = (await within(once(child, 'exit'), 30_000, `gatepool ${args[0]} to exit`)) as [
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

  it('a saved token goes only to the platform it was saved for; GATEPOOL_TOKEN alone uses the saved platform', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gatepool-login-saved-'));
    // Another host, which must never see the saved token (nor anything else).
    const seen: string[] = [];
    const other: Server = createServer((req, res) => {
      seen.push(`${req.method} ${req.url} ${req.headers.authorization ?? ''}`);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    const elsewhere = `http://127.0.0.1:${(other.address() as AddressInfo).port}`;
    try {
      const env = { XDG_CONFIG_HOME: dir };
      const saved = await login(['--platform', tp.url, '--token', admin.token], env, null);
      expect(saved.stderr).toBe('');
      expect(saved.code).toBe(0);

      const [redirected, envToken, sameHost, refusedEnvToken] = await Promise.all([
        cli(['targets'], { ...env, GATEPOOL_PLATFORM: elsewhere }, null),
        cli(['targets'], { ...env, GATEPOOL_TOKEN: admin.token }, null),
        cli(['targets'], { ...env, GATEPOOL_PLATFORM: `${tp.url}/` }, null),
        cli(['targets'], { ...env, GATEPOOL_TOKEN: 'gps_not-a-real-token' }, null),
      ]);
      expect(redirected.code).toBe(1);
      expect(redirected.stderr).toBe(
        `gatepool targets: not logged in to ${elsewhere} (the saved login is for ${tp.url}): ` +
          `run \`gatepool login --platform ${elsewhere}\`, or set GATEPOOL_TOKEN\n`,
      );
      expect(seen).toEqual([]);

      expect(envToken.stderr).toMatch(/^No access targets yet/);
      expect(envToken.code).toBe(0);
      expect(sameHost.stderr).toMatch(/^No access targets yet/);
      expect(sameHost.code).toBe(0);

      // The variable would still win after a new login: telling to log in would not help.
      expect(refusedEnvToken.code).toBe(1);
      expect(refusedEnvToken.stderr).toBe(
        `gatepool targets: the token in GATEPOOL_TOKEN was refused by ${tp.url} (invalid, expired or revoked): ` +
          `set a valid one, or unset GATEPOOL_TOKEN to use your saved login\n`,
      );
    } finally {
      other.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a URL that answers but is no platform, an empty --token and a port that speaks no HTTP are one clear line, and nothing is saved', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gatepool-login-bad-'));
    // What the platform's web UI does under a wrong base path: 200 and a page for any path.
    const ui: Server = createServer((_req, res) =>
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end('<!doctype html>'),
    );
    await new Promise<void>((resolve) => ui.listen(0, '127.0.0.1', resolve));
    const page = `http://127.0.0.1:${(ui.address() as AddressInfo).port}/some/path`;
    // A database port or the like: takes the request and hangs up.
    const notHttp = net.createServer((sock) => {
      sock.on('error', () => undefined);
      sock.on('data', () => sock.destroy());
    });
    await new Promise<void>((resolve) => notHttp.listen(0, '127.0.0.1', resolve));
    const raw = `http://127.0.0.1:${(notHttp.address() as AddressInfo).port}`;
    const config = join(dir, 'gatepool', 'config.json');
    try {
      const env = { XDG_CONFIG_HOME: dir };
      const [wrongPath, emptyToken, noHttp] = await Promise.all([
        login(['--platform', page, '--token', admin.token], env, null),
        // stdin left open: a prompt would wait for it, and the run would time out.
        login(['--platform', tp.url, '--token', ''], env, null),
        login(['--platform', raw], env, null),
      ]);
      expect(wrongPath.code).toBe(1);
      expect(wrongPath.stderr).toBe(
        `gatepool login: ${page} does not answer like a gatepool platform (got text/html): ` +
          `give the platform's base URL, e.g. https://gatepool.example.com\n`,
      );
      expect(emptyToken.code).toBe(1);
      expect(emptyToken.stderr).toBe(
        "gatepool login: --token is empty: give the machine identity's access token, or leave --token out to log in with email and password\n",
      );
      expect(noHttp.code).toBe(1);
      expect(noHttp.stderr).toBe(
        `gatepool login: ${raw} did not answer HTTP (the connection was closed without an answer): ` +
          `is that the platform's address? Give its base URL, e.g. https://gatepool.example.com\n`,
      );
      expect(existsSync(config)).toBe(false);

      // A login saved by an older version with such a URL: the commands say so, not crash.
      mkdirSync(join(dir, 'gatepool'), { recursive: true });
      writeFileSync(config, JSON.stringify({ platform: page, token: admin.token }));
      const [targets, connect] = await Promise.all([
        cli(['targets'], env, null),
        cli(['connect', 'pg'], env, null),
      ]);
      for (const [name, run] of [
        ['targets', targets],
        ['connect', connect],
      ] as const) {
        expect(run.code).toBe(1);
        expect(run.stderr).toBe(
          `gatepool ${name}: ${page} does not answer like a gatepool platform (got text/html): ` +
            `give the platform's base URL, e.g. https://gatepool.example.com\n`,
        );
      }
    } finally {
      ui.close();
      notHttp.close();
      await rm(dir, { recursive: true, force: true });
    }
    // Five CLI processes, each loading the sources through tsx: slow on a busy host.
  }, 60_000);

  it("--org picks one of the person's organizations, by name; another is refused", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gatepool-login-org-'));
    const env = { XDG_CONFIG_HOME: dir };
    try {
      // The admin of a second organization, invited into the first and joined.
      const other = await createSecondOrg(tp, `Beta ${driver}`);
      const invited = await admin.client.post('/api/v1/users', {
        email: other.email,
        password: 'unused-password-123',
        role: 'member',
      });
      expect(invited.status).toBe(201);
      const pending = await other.client.get('/api/v1/me/invitations');
      const accepted = await other.client.post(
        `/api/v1/me/invitations/${pending.body.items[0].id}/accept`,
        { code: invited.body.acceptCode },
      );
      expect(accepted.status).toBe(200);
      const first = (await admin.client.get('/api/v1/me')).body.organization.name as string;
      const base = ['--platform', tp.url, '--email', other.email];

      // Without --org: their first organization, and a word on the others.
      const plain = await login(base, env, `${other.password}\n`);
      expect(plain.code, plain.stderr).toBe(0);
      expect(plain.stdout).toMatch(new RegExp(`\\(Beta ${driver}, role admin\\)`));
      expect(plain.stdout).toContain(`You are also a member of ${first}: choose with --org NAME.`);

      // By name (any case): the saved token works in that organization.
      const chosen = await login(
        [...base, '--org', first.toUpperCase()],
        env,
        `${other.password}\n`,
      );
      expect(chosen.code, chosen.stderr).toBe(0);
      expect(chosen.stdout).toContain(`(${first}, role member)`);
      const saved = JSON.parse(readFileSync(join(dir, 'gatepool', 'config.json'), 'utf8'));
      const me = await api(tp, saved.token).get('/api/v1/me');
      expect(me.body.organization.id).toBe(admin.orgId);

      // An organization they are not in: refused, naming theirs; the saved login is kept.
      const wrong = await login([...base, '--org', 'nowhere'], env, `${other.password}\n`);
      expect(wrong.code).toBe(1);
      expect(wrong.stderr).toContain('you are not a member of an organization "nowhere"');
      expect(wrong.stderr).toContain('nothing was saved');
      expect(JSON.parse(readFileSync(join(dir, 'gatepool', 'config.json'), 'utf8')).token).toBe(
        saved.token,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('whoami says who the saved login is; logout revokes it on the platform and forgets it (QA3 F16)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gatepool-logout-'));
    const env = { XDG_CONFIG_HOME: dir };
    const config = join(dir, 'gatepool', 'config.json');
    try {
      const signedIn = await login(
        ['--platform', tp.url],
        env,
        `${admin.email}\n${admin.password}\n`,
      );
      tp.platform.ctx.limits.loginPerIp.reset('127.0.0.1');
      expect(signedIn.code, signedIn.stderr).toBe(0);
      const { token } = JSON.parse(readFileSync(config, 'utf8'));

      const who = await cli(['whoami'], env, null);
      expect(who.code, who.stderr).toBe(0);
      const org = (await admin.client.get('/api/v1/me')).body.organization;
      expect(who.stdout).toContain(`Platform      ${tp.url}\n`);
      expect(who.stdout).toContain(`Logged in as  ${admin.email}\n`);
      expect(who.stdout).toContain(`Organization  ${org.name} (${org.id})\n`);
      expect(who.stdout).toContain('Role          admin\n');
      // A session's expiry is known from the login (12 h by default).
      expect(who.stdout).toMatch(/Token {9}saved; expires \S+ \(in 12 h\)\n/);

      const out = await cli(['logout'], env, null);
      expect(out.code, out.stderr).toBe(0);
      expect(out.stdout).toBe(
        `Logged out of ${tp.url}: the platform revoked the token; removed ${config}.\n`,
      );
      expect(existsSync(config)).toBe(false);
      expect((await api(tp, token).get('/api/v1/me')).status).toBe(401);

      const [whoNow, again] = await Promise.all([
        cli(['whoami'], env, null),
        cli(['logout'], env, null),
      ]);
      expect(whoNow.code).toBe(1);
      expect(whoNow.stderr).toBe(
        'gatepool whoami: not logged in: run `gatepool login --platform URL` (or set GATEPOOL_PLATFORM and GATEPOOL_TOKEN)\n',
      );
      expect(again.code).toBe(0);
      expect(again.stdout).toBe('Not logged in: nothing saved in the gatepool config.\n');

      // A machine identity's token: named as one; its expiry is not told at login.
      const bot = await admin.client.post('/api/v1/identities', {
        name: 'whoami-bot',
        role: 'viewer',
      });
      const botToken = (await admin.client.post(`/api/v1/identities/${bot.body.id}/tokens`, {}))
        .body.token as string;
      expect((await login(['--platform', tp.url, '--token', botToken], env, null)).code).toBe(0);
      const botWho = await cli(['whoami'], env, null);
      expect(botWho.stdout).toContain('Logged in as  whoami-bot (machine identity)\n');
      expect(botWho.stdout).toContain('Role          viewer\n');
      expect(botWho.stdout).toContain('Token         saved; expiry not known here');
      // Revoked meanwhile: logout still forgets it, and says the platform no longer took it.
      expect((await api(tp, botToken).post('/api/v1/auth/logout')).status).toBe(204);
      const stale = await cli(['logout'], { ...env, GATEPOOL_TOKEN: 'gpi_from-the-env' }, null);
      expect(stale.code).toBe(0);
      expect(stale.stdout).toBe(
        `Logged out of ${tp.url}: the platform no longer accepted the token (expired or already revoked); removed ${config}.\n` +
          'GATEPOOL_TOKEN is still set: commands keep using it until you unset it.\n',
      );
      expect(existsSync(config)).toBe(false);

      // The platform unreachable: the token is still forgotten here, and that it lives on is said.
      const nobody = `http://127.0.0.1:${await freePort()}`;
      mkdirSync(join(dir, 'gatepool'), { recursive: true });
      writeFileSync(
        config,
        JSON.stringify({ platform: nobody, token: 'gps_x', expiresAt: '2099-01-01T00:00:00.000Z' }),
      );
      const offline = await cli(['logout'], env, null);
      expect(offline.code).toBe(0);
      expect(offline.stdout).toBe(
        `Logged out of ${nobody}: cannot reach the platform at ${nobody} (ECONNREFUSED), so the token was not revoked: ` +
          `it stays valid on the platform until it expires, 2099-01-01T00:00:00.000Z (in ${Math.round((Date.parse('2099-01-01') - Date.now()) / 86400_000)} days); removed ${config}.\n`,
      );
      expect(existsSync(config)).toBe(false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 90_000);
});
