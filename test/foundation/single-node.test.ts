/**
 * One platform server per PostgreSQL database (db/node-watch.ts): a second server on the same
 * database is told so, naming the first, and takes over once the first stops; servers on
 * different databases do not hear of each other.
 */
import { afterAll, describe, expect, inject, it } from 'vitest';
import { watchSingleNode, type NodeWatch } from '../../src/server/db/node-watch.js';
import { hasPostgres, waitFor } from '../helpers/platform.js';
import { createTestDatabase, PG_ENV } from '../helpers/postgres.js';

describe.runIf(hasPostgres())('one platform server per database', () => {
  const drops: (() => Promise<void>)[] = [];
  const watches: NodeWatch[] = [];
  afterAll(async () => {
    await Promise.all(watches.map((w) => w.close()));
    await Promise.all(drops.map((d) => d()));
  });

  function watch(url: string, retryMs = 200) {
    const warnings: string[] = [];
    const infos: string[] = [];
    const w = watchSingleNode(
      url,
      (m) => warnings.push(m),
      (m) => infos.push(m),
      retryMs,
    );
    watches.push(w);
    return { w, warnings, infos };
  }

  it('warns the second server, naming the first, until the first stops', async () => {
    const db = await createTestDatabase(process.env[PG_ENV]!, inject('pgRunId')!, null);
    drops.push(db.drop);
    const other = await createTestDatabase(process.env[PG_ENV]!, inject('pgRunId')!, null);
    drops.push(other.drop);

    const first = watch(db.url);
    // The first holds the database before the second looks.
    await new Promise((r) => setTimeout(r, 500));
    const second = watch(db.url);
    const elsewhere = watch(other.url);
    await waitFor(() => second.warnings.length > 0, 5_000, 'the second server to be warned');
    expect(second.warnings[0]).toMatch(/another gatepool server is running on this database/);
    expect(second.warnings[0]).toMatch(/gatepool server connected from 127\.0\.0\.1 since \d{4}-/);
    expect(second.warnings[0]).toMatch(/one server per database/);
    // Told once, not every retry.
    await new Promise((r) => setTimeout(r, 700));
    expect(second.warnings).toHaveLength(1);
    expect(first.warnings).toEqual([]);
    expect(elsewhere.warnings).toEqual([]);

    await first.w.close();
    await waitFor(() => second.infos.length > 0, 5_000, 'the second server to take over');
    expect(second.infos[0]).toMatch(/has stopped/);
    // A third now hears of the second.
    const third = watch(db.url);
    await waitFor(() => third.warnings.length > 0, 5_000, 'the third server to be warned');
  });

  it('takes over the moment the first stops, not at its next retry; a stopped waiter leaves no trace', async () => {
    const db = await createTestDatabase(process.env[PG_ENV]!, inject('pgRunId')!, null);
    drops.push(db.drop);
    // A minute between retries: only waiting in the lock's queue can hand over in seconds.
    const first = watch(db.url, 60_000);
    await new Promise((r) => setTimeout(r, 500));
    const quitter = watch(db.url, 60_000);
    const second = watch(db.url, 60_000);
    await waitFor(() => second.warnings.length > 0, 5_000, 'the second server to be warned');
    await waitFor(() => quitter.warnings.length > 0, 5_000, 'the third server to be warned');
    // One waiter stops while the first still holds: it must not take the lock on its way out.
    await quitter.w.close();
    await new Promise((r) => setTimeout(r, 1500));

    const stoppedAt = Date.now();
    await first.w.close();
    await waitFor(() => second.infos.length > 0, 5_000, 'the second server to take over');
    expect(Date.now() - stoppedAt).toBeLessThan(5_000);
    expect(second.infos[0]).toMatch(/has stopped/);
    expect(quitter.infos).toEqual([]);
    // The second holds it now: a newcomer is told of the second.
    const newcomer = watch(db.url, 60_000);
    await waitFor(() => newcomer.warnings.length > 0, 5_000, 'the newcomer to be warned');
  });
});
