/**
 * The embedded database as an operator meets it (issue 11), with real `gatepool` processes:
 * one process per data directory (the others refuse at once, touching nothing), admin commands
 * and backups through the running server, a stale lock after SIGKILL, private file modes,
 * backup under write load → restore → start with every acknowledged row and a secret that
 * needs the root key (a Kubernetes reviewer JWT still works for a login), scheduled snapshots.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startKubeApi, type KubeApi } from '../fixtures/kube-api.js';
import { bootstrap, TEST_PASSWORD, waitFor, type Account } from '../helpers/platform.js';
import { gatepool, identityNames, startServer, type ServerProcess } from './processes.js';

/** Logs in over HTTP to a server process (few logins here: far below the per-IP limit). */
async function login(
  server: ServerProcess,
  email: string,
  organizationId?: string,
): Promise<{ status: number; body: { organization?: { id: string }; role?: string } }> {
  const res = await server.api().post('/api/v1/auth/login', {
    email,
    password: TEST_PASSWORD,
    ...(organizationId ? { organizationId } : {}),
  });
  return { status: res.status, body: res.body };
}

/** Files and directories under dir that anyone but the owner could read or enter. */
function notPrivate(dir: string): string[] {
  return execFileSync('find', [dir, '-perm', '/077', '-not', '-type', 's'], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean);
}

describe('the embedded database, operated with real processes', () => {
  let dir: string;
  let data: string;
  let kube: KubeApi;
  let server: ServerProcess | undefined;
  let admin: Account;
  let env: Record<string, string>;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gatepool-op-'));
    data = join(dir, 'data');
    kube = await startKubeApi();
    env = { GATEPOOL_DATA_DIR: data, GATEPOOL_DIRECT_TARGETS: `127.0.0.1:${kube.port}` };
    server = await startServer(env);
    admin = await bootstrap(server.url);
  }, 120_000);
  afterAll(async () => {
    await server?.kill('SIGKILL');
    await kube?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lets one process open the data directory; the others refuse at once and touch nothing', async () => {
    const sock = statSync(join(data, 'gatepool.sock'));
    expect(sock.mode & 0o777).toBe(0o600);
    const before = readdirSync(data).sort();
    const attempts = [
      ['server', '--port', '0', '--tunnel-port', '0'],
      ['migrate'],
      ['restore', '--from', join(dir, 'nothing.tar.gz'), '--force'],
    ];
    writeFileSync(join(dir, 'nothing.tar.gz'), 'not a backup');
    for (const args of attempts.slice(0, 2)) {
      const run = await gatepool(args, env);
      expect(run.code, `${args[0]}: ${run.stdout}`).toBe(1);
      const lines = run.stderr.trim().split('\n');
      expect(lines, run.stderr).toHaveLength(1);
      expect(lines[0]).toContain(`the data directory ${data} is in use`);
      expect(lines[0]).toContain(`(pid ${server!.pid})`);
      expect(lines[0]).toMatch(/stop it first/);
    }
    // restore reads the file first: a bad one is refused before any lock is taken.
    const restore = await gatepool(attempts[2]!, env);
    expect(restore.code).toBe(1);
    expect(restore.stderr).toMatch(/is not a gatepool backup/);
    expect(readdirSync(data).sort()).toEqual(before);
    expect(statSync(join(data, 'gatepool.sock')).ino).toBe(sock.ino);
    // The first server never noticed.
    expect((await server!.api().get('/readyz')).status).toBe(200);
  });

  it('creates an organization through the running server; its admin logs in at once', async () => {
    const run = await gatepool(
      ['admin', 'create-org', '--name', 'Second', '--admin-email', 'second@example.com'],
      { ...env, GATEPOOL_ADMIN_PASSWORD: TEST_PASSWORD },
    );
    expect(run.code, run.stderr).toBe(0);
    const orgId = /organizationId ([0-9a-f-]{36})/.exec(run.stdout)?.[1];
    expect(orgId).toBeDefined();
    const { status, body } = await login(server!, 'second@example.com', orgId);
    expect(status).toBe(200);
    expect(body).toMatchObject({ organization: { id: orgId, name: 'Second' }, role: 'admin' });
    // Refusals come back as one clear line, exit 1.
    const again = await gatepool(
      ['admin', 'create-org', '--name', 'Third', '--admin-email', 'third@example.com'],
      env,
    );
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/password of at least 12/);
    // The server applies the same rules: one organization per name, ignoring case.
    const twin = await gatepool(
      ['admin', 'create-org', '--name', 'sECOND', '--admin-email', 'third@example.com'],
      { ...env, GATEPOOL_ADMIN_PASSWORD: TEST_PASSWORD },
    );
    expect(twin.code).toBe(1);
    expect(twin.stderr).toContain(`an organization named "Second" already exists (${orgId})`);
    const reused = await gatepool(
      ['admin', 'create-org', '--name', 'Fourth', '--admin-email', 'second@example.com'],
      { ...env, GATEPOOL_ADMIN_PASSWORD: 'short' },
    );
    expect(reused.code, reused.stderr).toBe(0);
    expect(reused.stdout).toContain(
      'second@example.com already exists: their password is unchanged (GATEPOOL_ADMIN_PASSWORD was ignored).',
    );
    const fourthId = /organizationId ([0-9a-f-]{36})/.exec(reused.stdout)?.[1];
    const fourth = await login(server!, 'second@example.com', fourthId);
    expect(fourth.status).toBe(200);
    expect(fourth.body).toMatchObject({ organization: { id: fourthId, name: 'Fourth' } });
  });

  it('starts after a SIGKILL (the stale socket is replaced), with its data and private files', async () => {
    await server!.kill('SIGKILL');
    expect(existsSync(join(data, 'gatepool.sock'))).toBe(true);
    server = await startServer(env);
    expect((await login(server, 'second@example.com')).status).toBe(200);
    expect((await login(server, admin.email, admin.orgId)).status).toBe(200);
    expect(notPrivate(data)).toEqual([]);
  }, 120_000);

  it('backs up under write load; the restore starts with every acknowledged row and working secrets', async () => {
    // A secret that needs the root key: a reviewer JWT, encrypted at rest.
    const ident = await server!.api(admin.token).post('/api/v1/identities', {
      name: 'k8s-bot',
      role: 'viewer',
    });
    expect(ident.status, ident.text).toBe(201);
    const saved = await server!
      .api(admin.token)
      .post(`/api/v1/identities/${ident.body.id}/kubernetes-auth`, {
        kubernetesHost: kube.url,
        caCert: kube.caCert,
        tokenReviewerJwt: kube.reviewerToken,
      });
    expect(saved.status, saved.text).toBe(201);

    const acked: string[] = [];
    let writing = true;
    const writer = (async () => {
      for (let i = 0; writing && i < 5000; i++) {
        const res = await server!
          .api(admin.token)
          .post('/api/v1/identities', { name: `load-${i}`, role: 'viewer' });
        expect(res.status, res.text).toBe(201);
        acked.push(`load-${i}`);
      }
    })();
    await waitFor(() => acked.length >= 5, 30_000, 'first writes');
    const ackedBefore = [...acked];
    const out = join(dir, 'backup.tar.gz');
    const run = await gatepool(['backup', '--out', out], env);
    writing = false;
    await writer;
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/taken by the running server \(pid \d+\)/);
    expect(run.stdout).toMatch(/root key is INSIDE this file/);
    expect(statSync(out).mode & 0o777).toBe(0o600);
    expect(execFileSync('tar', ['tzf', out], { encoding: 'utf8' }).split('\n').sort()).toEqual(
      ['', 'manifest.json', 'pglite.tar.gz', 'root.key'].sort(),
    );
    // Never over an existing file without --force.
    const twice = await gatepool(['backup', '--out', out], env);
    expect(twice.code).toBe(1);
    expect(twice.stderr).toMatch(/exists; choose another --out or add --force/);

    // Restore: refused into a live or non-empty directory, done into an empty one.
    const busy = await gatepool(['restore', '--from', out], env);
    expect(busy.code).toBe(1);
    expect(busy.stderr).toMatch(/is in use/);
    const target = join(dir, 'restored');
    const restoreEnv = { ...env, GATEPOOL_DATA_DIR: target };
    const restored = await gatepool(['restore', '--from', out], restoreEnv);
    expect(restored.code, restored.stderr).toBe(0);
    expect(restored.stdout).toMatch(/root key was restored/);
    const over = await gatepool(['restore', '--from', out], restoreEnv);
    expect(over.code).toBe(1);
    expect(over.stderr).toMatch(/is not empty .*add --force/);

    const copy = await startServer(restoreEnv);
    try {
      const names = await identityNames(admin.token, copy);
      for (const name of ackedBefore) expect(names.has(name), name).toBe(true);
      // The copy is one moment of the load: some prefix of the writes, no holes.
      const loads = [...names].filter((n) => n.startsWith('load-')).length;
      for (let i = 0; i < loads; i++) expect(names.has(`load-${i}`), `load-${i}`).toBe(true);
      // The reviewer JWT decrypts with the restored root key and is what the cluster sees.
      const jwt = await kube.serviceAccountToken({ namespace: 'apps', name: 'web' });
      const before = kube.requests.length;
      const res = await copy
        .api()
        .post('/api/v1/auth/kubernetes-auth/login', { identityId: ident.body.id, jwt });
      expect(res.status, res.text).toBe(200);
      expect(kube.requests.slice(before).map((r) => r.bearer)).toContain(kube.reviewerToken);
      expect(notPrivate(target)).toEqual([]);
    } finally {
      await copy.kill();
    }
  }, 180_000);

  it('snapshots on a schedule into DATA_DIR/backups, keeping GATEPOOL_BACKUP_KEEP', async () => {
    await server!.kill();
    server = await startServer({
      ...env,
      GATEPOOL_BACKUP_INTERVAL: '1s',
      GATEPOOL_BACKUP_KEEP: '2',
    });
    const backups = join(data, 'backups');
    const scheduled = () =>
      existsSync(backups) ? readdirSync(backups).filter((f) => f.startsWith('scheduled-')) : [];
    await waitFor(() => scheduled().length >= 2, 60_000, 'two scheduled snapshots');
    const first = scheduled().sort()[0];
    await waitFor(() => !scheduled().includes(first!), 60_000, 'the oldest one rotated out');
    expect(scheduled().length).toBeLessThanOrEqual(2);
    expect(notPrivate(backups)).toEqual([]);
  }, 150_000);

  it('points to pg_dump / pg_restore on PostgreSQL', async () => {
    const url = 'postgres://postgres@127.0.0.1:1/none';
    const b = await gatepool(['backup', '--out', join(dir, 'x'), '--database-url', url]);
    expect(b.code).toBe(1);
    expect(b.stderr).toMatch(/pg_dump/);
    const r = await gatepool(['restore', '--from', join(dir, 'x'), '--database-url', url]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/pg_restore/);
  });
});
