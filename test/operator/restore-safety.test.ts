/**
 * Refusals of the embedded database's operator commands, with real processes: a damaged backup
 * restores nothing and changes nothing (the old data still starts, with its admin), commands
 * that find no database refuse instead of creating one, the root key is reported as it is, and
 * every refusal names what is wrong in one line and leaves no lock socket and no new root key.
 */
import { createHash } from 'node:crypto';
import { execFile, execFileSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/server/db/client.js';
import { bootstrap, TEST_PASSWORD, type Account } from '../helpers/platform.js';
import { gatepool, startServer, type Run } from './processes.js';
import { nodeEntry } from '../helpers/entry.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const NOBODY = 65534;
const isRoot = process.getuid?.() === 0;

/** A one-shot `gatepool` bounded by timeoutMs, optionally as another user (root only). */
function run(
  args: string[],
  env: Record<string, string>,
  opts: { timeoutMs?: number; uid?: number } = {},
): Promise<Run> {
  const node = [process.execPath, ...nodeEntry('cli'), ...args];
  const [cmd, ...argv] =
    opts.uid === undefined
      ? node
      : ['setpriv', `--reuid=${opts.uid}`, `--regid=${opts.uid}`, '--clear-groups', ...node];
  const started = Date.now();
  return new Promise((resolve) => {
    execFile(
      cmd!,
      argv,
      {
        cwd: ROOT,
        timeout: opts.timeoutMs ?? 60_000,
        env: { ...process.env, HOME: tmpdir(), GATEPOOL_LOG_LEVEL: 'silent', ...env },
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr), ms: Date.now() - started });
      },
    );
  });
}

const SERVER_FLAGS = ['server', '--host', '127.0.0.1', '--port', '0', '--tunnel-port', '0'];

/** Every path under dir with its size and content hash: "changed nothing" made checkable. */
function tree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) {
        out.push(`${relative(dir, p)}/`);
        walk(p);
      } else if (e.isFile())
        out.push(
          `${relative(dir, p)} ${createHash('sha256').update(readFileSync(p)).digest('hex')}`,
        );
      else out.push(`${relative(dir, p)} (other)`);
    }
  };
  walk(dir);
  return out.sort();
}

/** The one line a refusal prints. */
function oneLine(r: Run): string {
  const lines = r.stderr.trim().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^gatepool: /);
  return lines[0]!;
}

describe('embedded database refusals, with real processes', () => {
  let dir: string;
  let data: string;
  let env: Record<string, string>;
  let admin: Account;
  let good: string;
  /** The backup's parts, to build damaged ones from. */
  let parts: string;

  /** A backup file of these parts, the dump and root key replaced as given. */
  function backupOf(name: string, replace: { dump?: Buffer; rootKey?: Buffer | null }): string {
    const d = join(dir, `parts-${name}`);
    cpSync(parts, d, { recursive: true });
    if (replace.dump) writeFileSync(join(d, 'pglite.tar.gz'), replace.dump);
    if (replace.rootKey === null) rmSync(join(d, 'root.key'));
    else if (replace.rootKey) writeFileSync(join(d, 'root.key'), replace.rootKey);
    const file = join(dir, `${name}.tar.gz`);
    execFileSync('tar', ['--format=ustar', '-czf', file, '-C', d, ...readdirSync(d).sort()]);
    return file;
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gatepool-refuse-'));
    // Other users' runs below must reach their directories inside it.
    chmodSync(dir, 0o755);
    data = join(dir, 'data');
    env = { GATEPOOL_DATA_DIR: data };
    const server = await startServer(env);
    try {
      admin = await bootstrap(server.url);
      good = join(dir, 'good.tar.gz');
      const b = await gatepool(['backup', '--out', good], env);
      expect(b.code, b.stderr).toBe(0);
    } finally {
      await server.kill();
    }
    parts = join(dir, 'parts');
    mkdirSync(parts);
    execFileSync('tar', ['xzf', good, '-C', parts]);
  }, 120_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('a damaged backup restores nothing and changes nothing; the old data still starts', async () => {
    const dump = readFileSync(join(parts, 'pglite.tar.gz'));
    const onlyVersion = join(dir, 'only-version');
    mkdirSync(onlyVersion);
    writeFileSync(join(onlyVersion, 'PG_VERSION'), '17\n');
    const damaged = {
      truncated: backupOf('truncated', { dump: dump.subarray(0, dump.length >> 1) }),
      garbage: backupOf('garbage', { dump: Buffer.alloc(4096, 7) }),
      'no database': backupOf('no-database', {
        dump: execFileSync('tar', ['--format=ustar', '-cz', '-C', onlyVersion, 'PG_VERSION']),
      }),
      'short root key': backupOf('short-key', { rootKey: Buffer.from('abc\n') }),
    };
    const before = tree(data);
    for (const [what, file] of Object.entries(damaged)) {
      const r = await run(['restore', '--from', file, '--force'], env, { timeoutMs: 60_000 });
      expect(r.code, `${what}: ${r.stdout}${r.stderr}`).toBe(1);
      const line = oneLine(r);
      expect(line, what).toContain(`${file} is damaged`);
      expect(line, what).toContain(`${data} is untouched`);
      expect(tree(data), what).toEqual(before);
    }
    // Into a directory that did not exist: none is left behind.
    const fresh = join(dir, 'fresh');
    const r = await run(['restore', '--from', damaged.truncated, '--data-dir', fresh], env);
    expect(r.code).toBe(1);
    expect(existsSync(fresh)).toBe(false);

    // No trap: the platform starts on its own data, its admin logs in, nothing to bootstrap.
    const server = await startServer(env);
    try {
      const login = await server
        .api()
        .post('/api/v1/auth/login', { email: admin.email, password: TEST_PASSWORD });
      expect(login.status, login.text).toBe(200);
      expect(server.output()).not.toMatch(/First start/);
    } finally {
      await server.kill();
    }
    // And a good backup restores (an empty pglite directory, as an older failed restore left
    // behind, counts as empty).
    const target = join(dir, 'target');
    mkdirSync(join(target, 'pglite'), { recursive: true });
    const ok = await run(['restore', '--from', good, '--data-dir', target], env);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/restored .* \(taken .*, \d+ migrations\)/);
    expect(readdirSync(target).sort()).toEqual(['pglite', 'root.key']);
  }, 240_000);

  it('a backup file cut short is damaged, and --out into a missing directory is refused at once (QA3 F18)', async () => {
    // What `head -c 5000 gp.tar.gz > trunc.tar.gz` makes: a gzip that stops mid-way.
    const cut = join(dir, 'cut-short.tar.gz');
    writeFileSync(cut, readFileSync(good).subarray(0, 5000));
    const fresh = join(dir, 'cut-target');
    const r = await run(['restore', '--from', cut, '--data-dir', fresh], env);
    expect(r.code).toBe(1);
    const line = oneLine(r);
    expect(line).toContain(`${cut} is damaged: it cannot be read to its end as a .tar.gz`);
    expect(line).toContain(`${fresh} is untouched`);
    expect(existsSync(fresh)).toBe(false);
    // A file that is no .tar.gz at all is still told apart.
    const text = join(dir, 'notes.txt');
    writeFileSync(text, 'not a backup\n');
    expect(oneLine(await run(['restore', '--from', text, '--data-dir', fresh], env))).toContain(
      `${text} is not a gatepool backup (not a .tar.gz)`,
    );

    const missing = join(dir, 'no-such-dir');
    const out = join(missing, 'gp.tar.gz');
    const b = await run(['backup', '--out', out], env);
    expect(b.code).toBe(1);
    expect(oneLine(b)).toBe(
      `gatepool: cannot write ${out}: the directory ${missing} does not exist (create it first: ` +
        `mkdir -p ${missing}); nothing was backed up`,
    );
    // Refused before the snapshot: quickly, and nothing written.
    expect(b.ms).toBeLessThan(10_000);
    expect(existsSync(missing)).toBe(false);
  }, 60_000);

  it('backup and create-org refuse a directory without a database instead of creating one', async () => {
    const empty = join(dir, 'empty');
    mkdirSync(join(empty, 'pglite'), { recursive: true });
    const emptyEnv = { GATEPOOL_DATA_DIR: empty };
    const out = join(dir, 'nothing.tar.gz');
    const b = await run(['backup', '--out', out], emptyEnv);
    expect(b.code).toBe(1);
    expect(oneLine(b)).toContain(`no gatepool database in ${empty}`);
    const org = await run(
      ['admin', 'create-org', '--name', 'Nowhere', '--admin-email', 'nowhere@example.com'],
      { ...emptyEnv, GATEPOOL_ADMIN_PASSWORD: TEST_PASSWORD },
    );
    expect(org.code).toBe(1);
    expect(oneLine(org)).toContain(`no gatepool database in ${empty}`);
    expect(readdirSync(join(empty, 'pglite'))).toEqual([]);
    expect(existsSync(out)).toBe(false);

    // A PostgreSQL data directory nothing ever migrated is not a platform's database.
    const bare = join(dir, 'bare');
    await (await openDatabase({ dataDir: join(bare, 'pglite') })).close();
    const z = await run(['backup', '--out', out], { GATEPOOL_DATA_DIR: bare });
    expect(z.code).toBe(1);
    expect(oneLine(z)).toMatch(/0 migrations applied.*nothing was written/);
    expect(existsSync(out)).toBe(false);
  }, 60_000);

  it('says truthfully whether, and why not, the root key is in a backup', async () => {
    // A copy of the data without its root key (the key was kept elsewhere).
    const keyless = join(dir, 'keyless');
    cpSync(data, keyless, { recursive: true });
    rmSync(join(keyless, 'root.key'));
    const out = join(dir, 'keyless.tar.gz');
    const b = await run(['backup', '--out', out], { GATEPOOL_DATA_DIR: keyless });
    expect(b.code, b.stderr).toBe(0);
    expect(b.stdout).toContain('taken offline');
    expect(b.stdout).toContain(`root key is NOT inside (there is no ${join(keyless, 'root.key')})`);
    expect(b.stdout).not.toContain('GATEPOOL_ENCRYPTION_KEY is set');
    const withEnv = await run(['backup', '--out', out, '--force'], {
      GATEPOOL_DATA_DIR: keyless,
      GATEPOOL_ENCRYPTION_KEY: 'ab'.repeat(32),
    });
    expect(withEnv.code, withEnv.stderr).toBe(0);
    expect(withEnv.stdout).toContain('root key is NOT inside (GATEPOOL_ENCRYPTION_KEY is set)');
  }, 60_000);

  it('a refused start or restore leaves no lock socket and no new root key', async () => {
    const restored = join(dir, 'restored-keyless');
    const noKeyBackup = backupOf('no-key', { rootKey: null });
    const r = await run(['restore', '--from', noKeyBackup, '--data-dir', restored], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/has no root key/);
    const restoredEnv = { GATEPOOL_DATA_DIR: restored };

    const wrongKey = await run(
      SERVER_FLAGS,
      { ...restoredEnv, GATEPOOL_ENCRYPTION_KEY: 'ab'.repeat(32) },
      { timeoutMs: 60_000 },
    );
    expect(wrongKey.code).toBe(1);
    expect(oneLine(wrongKey)).toMatch(/cannot decrypt secrets/);
    expect(readdirSync(restored).sort()).toEqual(['pglite']);

    const busy = await run(['restore', '--from', good], restoredEnv);
    expect(busy.code).toBe(1);
    expect(oneLine(busy)).toMatch(/is not empty/);
    expect(readdirSync(restored).sort()).toEqual(['pglite']);

    const noKey = await run(SERVER_FLAGS, restoredEnv, { timeoutMs: 60_000 });
    expect(noKey.code).toBe(1);
    expect(oneLine(noKey)).toContain(`${join(restored, 'root.key')} is missing`);
    expect(readdirSync(restored).sort()).toEqual(['pglite']);

    writeFileSync(join(restored, 'root.key'), 'abc\n', { mode: 0o600 });
    const shortKey = await run(SERVER_FLAGS, restoredEnv, { timeoutMs: 60_000 });
    expect(shortKey.code).toBe(1);
    expect(oneLine(shortKey)).toContain(`${join(restored, 'root.key')} is not a valid root key`);
    expect(readdirSync(restored).sort()).toEqual(['pglite', 'root.key']);
  }, 180_000);

  it.skipIf(!isRoot)(
    'files of another user: says who owns them, never "undefined" or a phantom holder',
    async () => {
      // The platform's files belong to root; the command runs as nobody.
      const other = join(dir, 'other');
      cpSync(data, other, { recursive: true });
      chownSync(other, NOBODY, NOBODY);
      chownSync(join(other, 'root.key'), NOBODY, NOBODY);
      const otherEnv = { GATEPOOL_DATA_DIR: other };
      const server = await run(SERVER_FLAGS, otherEnv, { uid: NOBODY, timeoutMs: 60_000 });
      expect(server.code).toBe(1);
      const line = oneLine(server);
      expect(line).not.toMatch(/undefined/);
      expect(line).toContain(`cannot open the embedded database in ${join(other, 'pglite')}`);
      expect(line).toMatch(/permission denied .*belongs to uid 0, gatepool runs as uid 65534/);
      expect(existsSync(join(other, 'gatepool.sock'))).toBe(false);

      // Now the database is nobody's, but the root key root's (not writable for a chmod).
      execFileSync('chown', ['-R', `${NOBODY}:${NOBODY}`, join(other, 'pglite')]);
      chownSync(join(other, 'root.key'), 0, 0);
      chmodSync(join(other, 'root.key'), 0o644);
      const key = await run(SERVER_FLAGS, otherEnv, { uid: NOBODY, timeoutMs: 60_000 });
      expect(key.code).toBe(1);
      expect(oneLine(key)).toContain(
        `${join(other, 'root.key')} is owned by another user (uid 0; this is uid 65534)`,
      );

      // A stale lock socket left by root: nobody cannot connect to it to see whether it lives.
      const sock = join(other, 'gatepool.sock');
      execFileSync('python3', [
        '-c',
        'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])',
        sock,
      ]);
      chmodSync(sock, 0o600);
      const migrate = await run(['migrate'], otherEnv, { uid: NOBODY });
      expect(migrate.code).toBe(1);
      const held = oneLine(migrate);
      expect(held).not.toMatch(/in use by another gatepool process/);
      expect(held).toContain(`the lock socket ${sock} could not be checked (permission denied`);
      expect(held).toContain(`remove ${sock}`);
      expect(statSync(sock).isSocket()).toBe(true);
    },
    180_000,
  );
});
