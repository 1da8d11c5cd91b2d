/** The CLI from source: license keygen → issue → a license the server accepts; migrate; create-org. */
import { execFile } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
} from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as schema from '../../src/server/db/schema.js';
import { LicenseVerifier } from '../../src/server/license/license.js';
import {
  bootstrap,
  login,
  startTestPlatform,
  TEST_PASSWORD,
  type TestPlatform,
} from '../helpers/platform.js';
import { nodeEntry } from '../helpers/entry.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function gatepool(args: string[], env: Record<string, string> = {}, cwd = ROOT): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [...nodeEntry('cli'), ...args],
      {
        cwd,
        timeout: 60_000,
        env: { ...process.env, GATEPOOL_LOG_LEVEL: 'silent', ...env },
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

describe('gatepool license', () => {
  let dir: string;
  let tp: TestPlatform | undefined;
  beforeAll(() => void (dir = mkdtempSync(join(tmpdir(), 'gatepool-cli-'))));
  afterAll(async () => {
    await tp?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keygen → issue → a license the server accepts', async () => {
    const keys = join(dir, 'keys');
    const gen = await gatepool(['license', 'keygen', '--out', keys]);
    expect(gen.code, gen.stderr).toBe(0);
    expect(gen.stdout).toContain('GATEPOOL_LICENSE_PUBLIC_KEY=');
    expect(statSync(join(keys, 'private.pem')).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(keys, 'public.pem'), 'utf8')).toMatch(/BEGIN PUBLIC KEY/);

    // Never overwrites a signing key.
    const again = await gatepool(['license', 'keygen', '--out', keys]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already exists/);

    tp = await startTestPlatform('pglite', {
      configOverrides: { GATEPOOL_LICENSE_PUBLIC_KEY: join(keys, 'public.pem') },
    });
    const admin = await bootstrap(tp);
    const issued = await gatepool([
      'license',
      'issue',
      '--key',
      join(keys, 'private.pem'),
      '--plan',
      'enterprise',
      '--org',
      admin.orgId,
      '--days',
      '30',
    ]);
    expect(issued.code, issued.stderr).toBe(0);
    const license = issued.stdout.trim();
    expect(license.split('.')).toHaveLength(3);
    const check = await new LicenseVerifier(readFileSync(join(keys, 'public.pem'), 'utf8')).verify(
      license,
      admin.orgId,
    );
    expect(check).toMatchObject({ ok: true, claims: { plan: 'enterprise', org: admin.orgId } });

    const put = await admin.client.put('/api/v1/license', { key: license });
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({ plan: 'enterprise', features: { gatewayPool: true } });

    const any = await gatepool([
      'license',
      'issue',
      '--key',
      join(keys, 'private.pem'),
      '--plan',
      'free',
      '--org',
      '*',
    ]);
    expect(any.code, any.stderr).toBe(0);
    expect(
      await new LicenseVerifier(readFileSync(join(keys, 'public.pem'), 'utf8')).verify(
        any.stdout,
        'x',
      ),
    ).toMatchObject({
      ok: true,
      claims: { org: '*', exp: null },
    });
  });

  it('refuses a bad plan, bad days or a missing key with exit 1 and a message', async () => {
    const key = join(dir, 'keys', 'private.pem');
    const org = ['--org', '*'];
    const [plan, days, missing, noOrg, badOrg, forever] = await Promise.all([
      gatepool(['license', 'issue', '--key', key, '--plan', 'gold', ...org]),
      gatepool(['license', 'issue', '--key', key, '--plan', 'enterprise', '--days', '-3', ...org]),
      gatepool([
        'license',
        'issue',
        '--key',
        join(dir, 'nope.pem'),
        '--plan',
        'enterprise',
        ...org,
      ]),
      gatepool(['license', 'issue', '--key', key, '--plan', 'enterprise']),
      gatepool(['license', 'issue', '--key', key, '--plan', 'enterprise', '--org', 'acme']),
      gatepool(['license', 'issue', '--key', key, '--plan', 'enterprise', '--days', '1e9', ...org]),
    ]);
    // A license for every organization is never issued by omission.
    expect(noOrg.code).toBe(1);
    expect(noOrg.stderr).toMatch(/--org/);
    expect(noOrg.stdout).toBe('');
    expect(badOrg.code).toBe(1);
    expect(badOrg.stderr).toContain('--org "acme" is not an organization id');
    expect(plan.code).toBe(1);
    expect(plan.stderr).toContain('unknown plan "gold": use free or enterprise');
    expect(plan.stdout).toBe('');
    expect(days.code).toBe(1);
    expect(days.stderr).toMatch(/positive number of days/);
    expect(forever.code).toBe(1);
    expect(forever.stderr).toMatch(/at most 36500 days; leave --days out/);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/cannot read/);
  });

  it('says so when given the public key instead of the private one (QA3 F5)', async () => {
    const publicKey = join(dir, 'keys', 'public.pem');
    const run = await gatepool([
      'license',
      'issue',
      '--key',
      publicKey,
      '--plan',
      'enterprise',
      '--org',
      '*',
    ]);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toBe(
      `gatepool: ${publicKey} is a public key: licenses are signed with the private key of the pair ` +
        `(${join(dir, 'keys', 'private.pem')} when made by \`gatepool license keygen\`); ` +
        `the public one goes to the platform's GATEPOOL_LICENSE_PUBLIC_KEY\n`,
    );
  });

  it('keygen writes outside any project by default and warns inside a git working tree', async () => {
    const config = join(dir, 'xdg');
    const gen = await gatepool(['license', 'keygen'], { XDG_CONFIG_HOME: config });
    expect(gen.code, gen.stderr).toBe(0);
    expect(gen.stderr).toBe('');
    expect(statSync(join(config, 'gatepool', 'license-keys', 'private.pem')).mode & 0o777).toBe(
      0o600,
    );
    const repo = join(dir, 'repo');
    mkdirSync(join(repo, '.git'), { recursive: true });
    const inside = await gatepool(['license', 'keygen', '--out', join(repo, 'license-keys')]);
    expect(inside.code, inside.stderr).toBe(0);
    expect(inside.stderr).toMatch(/warning: .* is inside the git working tree .*never commit/);
  });
});

describe('gatepool migrate and admin create-org', () => {
  let dir: string;
  let tp: TestPlatform | undefined;
  beforeAll(() => void (dir = mkdtempSync(join(tmpdir(), 'gatepool-cli-db-'))));
  afterAll(async () => {
    await tp?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('migrates once, then creates an organization whose admin can log in', async () => {
    const data = join(dir, 'data');
    const first = await gatepool(['migrate', '--data-dir', data]);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/^applied \d+ migration\(s\): 0001_foundation\.sql/);
    const second = await gatepool(['migrate', '--data-dir', data]);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toMatch(/database is up to date/);

    const bad = await gatepool(['migrate', '--data-dir', data, '--backup-keep', 'many']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/GATEPOOL_BACKUP_KEEP="many"/);
    // The server's listening flags are no migrate flags (QA3 F18).
    const port = await gatepool(['migrate', '--data-dir', data, '--port', '80']);
    expect(port.code).toBe(1);
    expect(port.stderr).toMatch(/unknown option '--port'/);

    const createOrg = (name: string, env: Record<string, string>, extra: string[] = []) =>
      gatepool(
        [
          'admin',
          'create-org',
          '--data-dir',
          data,
          '--name',
          name,
          '--admin-email',
          'B@example.com',
          ...extra,
        ],
        env,
      );
    const noPassword = await createOrg('Beta', { GATEPOOL_ADMIN_PASSWORD: '' });
    expect(noPassword.code).toBe(1);
    expect(noPassword.stderr).toMatch(/set GATEPOOL_ADMIN_PASSWORD to a password of at least 12/);
    // A password on the command line would show in the process list.
    const onCommandLine = await createOrg('Beta', {}, ['--admin-password', TEST_PASSWORD]);
    expect(onCommandLine.code).toBe(1);
    expect(onCommandLine.stderr).toMatch(
      /--admin-password is not accepted.*GATEPOOL_ADMIN_PASSWORD/,
    );
    expect(onCommandLine.stderr).not.toContain(TEST_PASSWORD);
    const created = await createOrg('Beta', { GATEPOOL_ADMIN_PASSWORD: TEST_PASSWORD });
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toMatch(/b@example\.com is its admin \(new user\)/);
    const orgId = /organizationId ([0-9a-f-]{36})/.exec(created.stdout)?.[1];
    expect(orgId).toBeDefined();
    // Organizations are told apart by name: a second "beta" is refused, whatever the case.
    const twin = await createOrg(' BETA ', { GATEPOOL_ADMIN_PASSWORD: TEST_PASSWORD });
    expect(twin.code).toBe(1);
    expect(twin.stderr).toContain(`an organization named "Beta" already exists (${orgId})`);
    // An existing admin keeps their password; the operator hears that the given one was unused.
    const reused = await createOrg('Gamma', { GATEPOOL_ADMIN_PASSWORD: 'short' });
    expect(reused.code, reused.stderr).toBe(0);
    expect(reused.stdout).toContain(
      'b@example.com already exists: their password is unchanged (GATEPOOL_ADMIN_PASSWORD was ignored).',
    );
    const gammaId = /organizationId ([0-9a-f-]{36})/.exec(reused.stdout)?.[1];
    expect(gammaId).toBeDefined();

    // The platform started on that data dir finds the org.
    tp = await startTestPlatform('pglite', {
      database: 'configured',
      configOverrides: { GATEPOOL_DATA_DIR: data },
    });
    expect(tp).toBeDefined();
    const { body } = await login(tp, 'b@example.com', TEST_PASSWORD, orgId);
    expect(body).toMatchObject({ organization: { id: orgId, name: 'Beta' }, role: 'admin' });
    const gamma = await login(tp, 'b@example.com', TEST_PASSWORD, gammaId);
    expect(gamma.body).toMatchObject({ organization: { id: gammaId, name: 'Gamma' } });
    const organizations = await tp.db.select().from(schema.organizations);
    expect(organizations.map((o) => o.name).sort()).toEqual(['Beta', 'Gamma']);
    // Eight CLI processes (each loads the sources through tsx) and a platform: slow on a busy host.
  }, 120_000);
});

describe('gatepool migrate --help', () => {
  it("lists only what migrate uses, not the server's listening flags (QA3 F18)", async () => {
    const help = await gatepool(['migrate', '--help']);
    expect(help.code, help.stderr).toBe(0);
    for (const flag of ['--data-dir', '--database-url', '--backup-keep'])
      expect(help.stdout).toContain(flag);
    for (const flag of ['--host', '--port', '--tunnel-port', '--tunnel-hostname', '--public-url'])
      expect(help.stdout).not.toContain(`${flag} `);
  });
});

describe('gatepool server on a port in use', () => {
  let dir: string;
  beforeAll(() => void (dir = mkdtempSync(join(tmpdir(), 'gatepool-cli-port-'))));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('refuses before creating the data directory or a root key (QA3 F18)', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = String((taken.address() as AddressInfo).port);
    try {
      for (const [env, setting] of [
        [{ GATEPOOL_PORT: port, GATEPOOL_TUNNEL_PORT: '0' }, 'GATEPOOL_PORT'],
        [{ GATEPOOL_PORT: '0', GATEPOOL_TUNNEL_PORT: port }, 'GATEPOOL_TUNNEL_PORT'],
      ] as const) {
        const data = join(dir, `data-${setting}`);
        const run = await gatepool(['server'], {
          ...env,
          GATEPOOL_HOST: '127.0.0.1',
          GATEPOOL_DATA_DIR: data,
          DATABASE_URL: '',
        });
        expect(run.code).toBe(1);
        expect(run.stderr).toBe(
          `gatepool: listen EADDRINUSE: address already in use 127.0.0.1:${port}: the port is in use; choose another with ${setting}.\n`,
        );
        expect(existsSync(data)).toBe(false);
      }
    } finally {
      taken.close();
    }
  });
});

describe('gatepool connect --help', () => {
  it('names the --listen default once', async () => {
    const help = await gatepool(['connect', '--help']);
    expect(help.code, help.stderr).toBe(0);
    const flat = help.stdout.replace(/\s+/g, ' ');
    expect(flat).toContain(
      '--listen <address> local address, HOST:PORT or PORT (default: a free port on 127.0.0.1)',
    );
    expect(flat.match(/default:/g)).toHaveLength(1);
  });
});

describe('gatepool admin create-org without a database', () => {
  let dir: string;
  beforeAll(() => void (dir = mkdtempSync(join(tmpdir(), 'gatepool-cli-nodb-'))));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('refuses, naming the directory, and leaves nothing behind', async () => {
    const run = await gatepool(
      ['admin', 'create-org', '--name', 'Beta', '--admin-email', 'b@example.com'],
      { GATEPOOL_DATA_DIR: '', DATABASE_URL: '', GATEPOOL_ADMIN_PASSWORD: TEST_PASSWORD },
      dir,
    );
    expect(run.stdout).toBe('');
    expect(run.stderr).toBe(
      `gatepool: there is no embedded database in ${join(dir, 'data')} (no ${join(dir, 'data', 'pglite')}): ` +
        "point GATEPOOL_DATA_DIR (or --data-dir) at the platform's data directory, or set DATABASE_URL\n",
    );
    expect(run.code).toBe(1);
    expect(readdirSync(dir)).toEqual([]);
    const elsewhere = join(dir, 'nowhere');
    const named = await gatepool(
      [
        'admin',
        'create-org',
        '--data-dir',
        elsewhere,
        '--name',
        'Beta',
        '--admin-email',
        'b@example.com',
      ],
      { DATABASE_URL: '', GATEPOOL_ADMIN_PASSWORD: TEST_PASSWORD },
      dir,
    );
    expect(named.code).toBe(1);
    expect(named.stderr).toMatch(/^gatepool: there is no embedded database in .*nowhere /);
    expect(existsSync(elsewhere)).toBe(false);
  });
});
