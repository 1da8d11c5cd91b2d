/**
 * A platform whose database is down must not make agents exit (issue 11.5): identify() fails, the
 * hub answers `unavailable`, the agent keeps retrying and connects once the database is back.
 * The database is a PostgreSQL cluster of this test's own (initdb + pg_ctl as user postgres, a
 * free port, a temp dir), so stopping it disturbs nobody.
 */
import { execFileSync } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentFleet } from '../helpers/gateway-agent.js';
import {
  bootstrap,
  hasPostgres,
  startTestPlatform,
  type TestPlatform,
} from '../helpers/platform.js';
import { freePort, sleep, within } from '../tunnel/harness.js';

const bindir = (): string => execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim();

/** Runs a PostgreSQL tool as the postgres user (initdb refuses root). */
function asPostgres(tool: string, args: string[]): void {
  execFileSync('runuser', ['-u', 'postgres', '--', join(bindir(), tool), ...args], {
    stdio: 'ignore',
    timeout: 60_000,
  });
}

class OwnCluster {
  private constructor(
    readonly dir: string,
    readonly port: number,
  ) {}

  static async create(): Promise<OwnCluster> {
    const dir = mkdtempSync(join(tmpdir(), 'gatepool-pg-'));
    const pwUid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const pwGid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(dir, pwUid, pwGid);
    const cluster = new OwnCluster(dir, await freePort());
    asPostgres('initdb', ['-D', join(dir, 'data'), '-A', 'trust', '-U', 'postgres', '-N']);
    cluster.start();
    return cluster;
  }

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  start(): void {
    asPostgres('pg_ctl', [
      '-D',
      join(this.dir, 'data'),
      '-l',
      join(this.dir, 'log'),
      '-o',
      `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off`,
      '-w',
      '-t',
      '30',
      'start',
    ]);
  }

  stop(): void {
    asPostgres('pg_ctl', ['-D', join(this.dir, 'data'), '-m', 'immediate', '-w', 'stop']);
  }

  destroy(): void {
    try {
      this.stop();
    } catch {
      // Already stopped.
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

describe.skipIf(!hasPostgres())('platform database down', () => {
  let cluster: OwnCluster | undefined;
  let tp: TestPlatform;
  const fleet = new AgentFleet();

  beforeAll(async () => {
    cluster = await OwnCluster.create();
    tp = await startTestPlatform('postgres', { databaseUrl: cluster.url });
  }, 90_000);
  afterAll(async () => {
    await fleet.close();
    await tp?.close();
    cluster?.destroy();
  });

  it('an agent that reconnects while the database is down keeps retrying, then connects', async () => {
    const db = cluster as OwnCluster;
    const admin = await bootstrap(tp.url);
    const token = (await admin.client.post('/api/v1/gateways/enrollment-tokens', {})).body
      .token as string;
    const first = await fleet.start({
      platformUrl: tp.url,
      token,
      name: 'patient',
      allow: ['127.0.0.1:5432'],
    });
    await first.waitForOutput(/connected: tunnel up/, 15_000);
    first.child.kill('SIGTERM');
    expect((await within(first.exited, 5000, 'first run exit')).code).toBe(0);

    db.stop();
    const again = await fleet.start({
      platformUrl: tp.url,
      name: 'patient',
      stateDir: first.stateDir,
    });
    await again.waitForOutput(/the platform cannot check gateways right now/, 15_000);
    // Several attempts, and still running: a database outage is not a verdict on the gateway.
    await sleep(1500);
    expect(again.child.exitCode).toBeNull();
    expect(again.output()).not.toMatch(/deleted or revoked/);

    db.start();
    await again.waitForOutput(/connected: tunnel up/, 20_000);
    expect(again.child.exitCode).toBeNull();
  });
});
