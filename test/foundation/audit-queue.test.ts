/**
 * Audit entries recorded off the request path (`AuditLog.recordSoon`, used for connection
 * events): written together in one statement, with the time of the event, kept in memory while
 * the database refuses them and written once it takes them again, bounded, and drained on close.
 */
import { randomUUID } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditLog } from '../../src/server/audit/service.js';
import type { Db } from '../../src/server/db/client.js';
import { auditLogs, organizations } from '../../src/server/db/schema.js';
import { DRIVERS, startTestPlatform, waitFor, type TestPlatform } from '../helpers/platform.js';

/**
 * The platform's real database, with inserts refused while `down` is set — the way a lost
 * connection surfaces to a caller — and every insert statement counted.
 */
function faultable(db: Db) {
  const state = { down: false, inserts: 0 };
  const proxy = new Proxy(db, {
    get(target, prop, receiver) {
      if (prop !== 'insert') return Reflect.get(target, prop, receiver) as unknown;
      return (table: typeof auditLogs) => {
        state.inserts += 1;
        if (state.down) {
          return {
            values: () => Promise.reject(new Error('Connection terminated unexpectedly')),
          };
        }
        return target.insert(table);
      };
    },
  });
  return { db: proxy, state };
}

const who = (orgId: string) => ({ orgId, ip: '127.0.0.1', userAgent: 'test' });
const actor = { type: 'user' as const, id: randomUUID(), name: 'ann@example.com' };

describe.each(DRIVERS)('audit queue (%s)', (driver) => {
  let tp: TestPlatform;
  let orgId: string;

  beforeAll(async () => {
    tp = await startTestPlatform(driver);
    orgId = randomUUID();
    await tp.db.insert(organizations).values({ id: orgId, name: `queue-${orgId}` });
  }, 60_000);
  afterAll(async () => tp?.close());

  const rows = (event: string) =>
    tp.db.select().from(auditLogs).where(eq(auditLogs.event, event)).orderBy(auditLogs.id);

  it('writes the events of one turn in one statement, in order, with the time of each event', async () => {
    const { db, state } = faultable(tp.db);
    const log = new AuditLog(db);
    const before = new Date();
    for (let i = 0; i < 25; i++) log.recordSoon(actor, 'test.batched', { i }, who(orgId));
    expect(log.pending).toBe(25);
    await log.drain();
    expect(log.pending).toBe(0);
    expect(state.inserts).toBe(1);
    const got = await rows('test.batched');
    expect(got.map((r) => (r.metadata as { i: number }).i)).toEqual([...Array(25).keys()]);
    for (const r of got) {
      expect(r.orgId).toBe(orgId);
      expect(r.actorName).toBe('ann@example.com');
      expect(r.createdAt.getTime()).toBeGreaterThanOrEqual(before.getTime() - 1000);
    }
  });

  it('keeps entries while the database refuses them and writes them when it is back', async () => {
    const { db, state } = faultable(tp.db);
    const errors: unknown[] = [];
    const log = new AuditLog(db, { retryMs: 30, onError: (err) => errors.push(err) });
    state.down = true;
    const at = Date.now();
    log.recordSoon(actor, 'test.outage', { n: 1, token: 'secret-value' }, who(orgId));
    log.recordSoon(actor, 'test.outage', { n: 2 }, who(orgId));
    await waitFor(() => (errors.length >= 2 ? true : undefined), 5000, 'two failed attempts');
    expect(log.pending).toBe(2);
    expect(await rows('test.outage')).toHaveLength(0);
    state.down = false;
    await waitFor(() => (log.pending === 0 ? true : undefined), 5000, 'the queue to empty');
    const got = await rows('test.outage');
    expect(got.map((r) => (r.metadata as { n: number }).n)).toEqual([1, 2]);
    // The time of the event, not of the write that finally succeeded.
    expect(Math.abs(got[0]!.createdAt.getTime() - at)).toBeLessThan(1000);
    expect((got[0]!.metadata as { token: string }).token).toBe('[redacted]');
  });

  it('drops the oldest entries beyond its bound and says how many', async () => {
    const { db, state } = faultable(tp.db);
    const dropped: number[] = [];
    const log = new AuditLog(db, {
      maxQueued: 3,
      retryMs: 20,
      onError: (_err, n) => void (n && dropped.push(n)),
    });
    state.down = true;
    for (let i = 0; i < 5; i++) log.recordSoon(actor, 'test.bounded', { i }, who(orgId));
    expect(log.pending).toBe(3);
    expect(dropped.reduce((a, b) => a + b, 0)).toBe(2);
    state.down = false;
    await log.drain();
    const got = await rows('test.bounded');
    expect(got.map((r) => (r.metadata as { i: number }).i)).toEqual([2, 3, 4]);
  });

  it('gives up draining after its timeout while the database stays away', async () => {
    const { db, state } = faultable(tp.db);
    const log = new AuditLog(db, { retryMs: 10 });
    state.down = true;
    log.recordSoon(actor, 'test.never', {}, who(orgId));
    const started = Date.now();
    await log.drain(300);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(log.pending).toBe(1);
  });
});
