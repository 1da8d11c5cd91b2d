/**
 * Revocation reaches open access connections: a `gatepool connect` connection whose token is
 * revoked, whose identity loses the `connect` permission or is deleted, or whose target is
 * deleted is cut at once, the client told why, and audited as revoked; a change that concerns
 * somebody else leaves it alone. Real CLI, platform and gateway processes (scenario.ts).
 */
import net from 'node:net';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addIdentity, waitFor } from '../helpers/platform.js';
import { sleep, within } from '../tunnel/harness.js';
import {
  localPg,
  metric,
  PG,
  startConnect,
  startScenario,
  type AccessScenario,
} from './scenario.js';

/** A connection through `port` to the hash target, left open: what it sent, and its fate. */
function openConnection(port: number) {
  const sock = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
  let answer = '';
  let sent = '';
  sock.on('error', () => undefined);
  sock.setEncoding('utf8').on('data', (d: string) => (answer += d));
  const closed = new Promise<void>((r) => sock.once('close', () => r()));
  return {
    closed,
    isClosed: () => sock.destroyed,
    send(text: string) {
      sent += text;
      sock.write(text);
    },
    /** Half-closes and returns the target's answer: the SHA-256 of all that was sent. */
    async finish(): Promise<{ answer: string; expected: string }> {
      sock.end();
      await within(closed, 10_000, 'the connection to end');
      return { answer, expected: createHash('sha256').update(sent).digest('hex') };
    },
  };
}

describe('revocation and open access connections', () => {
  let s: AccessScenario;
  const env = (token: string) => ({ GATEPOOL_PLATFORM: s.tp.url, GATEPOOL_TOKEN: token });

  beforeAll(async () => {
    s = await startScenario(1);
    await s.target({ name: 'hash', host: '127.0.0.1', port: s.hash.port, protocol: 'tcp' });
  }, 120_000);
  afterAll(async () => {
    await s?.close();
  });

  /** Waits until the platform counts `n` open access connections (their opens answered). */
  async function openConnections(n: number): Promise<void> {
    await waitFor(
      async () =>
        (await fetch(`${s.tp.url}/metrics`).then((r) => r.text())).includes(
          `gatepool_access_connections_open ${n}`,
        ),
      5_000,
      `${n} open connection(s)`,
    );
  }

  async function disconnectEntry(actorId: string) {
    return waitFor(
      async () => {
        const res = await s.admin.client.get('/api/v1/audit-logs?event=access.disconnect');
        return res.body.items?.find((e: { actor: { id: string } }) => e.actor.id === actorId);
      },
      5_000,
      'access.disconnect entry',
    );
  }

  it('a revoked token cuts its open connections; an unrelated change does not', async () => {
    const bot = await addIdentity(s.tp, s.admin, 'member');
    const other = await addIdentity(s.tp, s.admin, 'member');
    const c = await startConnect('hash', env(bot.token));
    const o = await startConnect('hash', env(other.token));
    try {
      const mine = openConnection(c.port);
      const theirs = openConnection(o.port);
      mine.send('before the revocation');
      theirs.send('unrelated');
      // Both open through the gateway (the platform answered their standbys' opens).
      await openConnections(2);

      // A change concerning nobody here: every open connection is checked, none is cut.
      expect(
        (await s.admin.client.post('/api/v1/identities', { name: 'bystander', role: 'viewer' }))
          .status,
      ).toBe(201);
      const revoke = await s.admin.client.delete(
        `/api/v1/identities/${bot.id}/tokens/${bot.tokenId}`,
      );
      expect(revoke.status).toBe(204);

      await within(mine.closed, 3_000, 'the revoked connection to be cut');
      await waitFor(() => /revoked/.test(c.stderr()), 3_000, 'connect to say why');
      expect(c.stderr()).toMatch(/closed: access to hash revoked: .*token/i);
      // The other caller's connection went on and still carries its bytes intact.
      expect(theirs.isClosed()).toBe(false);
      theirs.send(' and more');
      const done = await theirs.finish();
      expect(done.answer).toBe(done.expected);

      const entry = await disconnectEntry(bot.id);
      expect(entry.metadata).toMatchObject({ target: 'hash', result: 'revoked' });
      expect(entry.metadata.error).toMatch(/revoked/);
      const metrics = await (await fetch(`${s.tp.url}/metrics`)).text();
      expect(metrics).toMatch(/gatepool_access_connections_total\{result="revoked"\} [1-9]/);
    } finally {
      await c.stop();
      await o.stop();
    }
  });

  it('losing the connect permission cuts the connection, naming the permission', async () => {
    const bot = await addIdentity(s.tp, s.admin, 'member');
    const c = await startConnect('hash', env(bot.token));
    try {
      const conn = openConnection(c.port);
      conn.send('x');
      await openConnections(1);
      expect(
        (await s.admin.client.patch(`/api/v1/identities/${bot.id}`, { role: 'viewer' })).status,
      ).toBe(200);
      await within(conn.closed, 3_000, 'the connection to be cut');
      await waitFor(() => /revoked/.test(c.stderr()), 3_000, 'connect to say why');
      expect(c.stderr()).toMatch(/AccessTarget:connect/);
    } finally {
      await c.stop();
    }
  });

  /**
   * A new `tcp` target to the hash service and a member's open connection to it through
   * `gatepool connect`; `cut` checks the connection ends within 3 s with `why` on the CLI.
   */
  async function openTo(name: string) {
    const t = await s.target({ name, host: '127.0.0.1', port: s.hash.port, protocol: 'tcp' });
    const bot = await addIdentity(s.tp, s.admin, 'member');
    const c = await startConnect(name, env(bot.token));
    const conn = openConnection(c.port);
    conn.send('x');
    await openConnections(1);
    const cut = async (why: RegExp) => {
      await within(conn.closed, 3_000, 'the connection to be cut');
      await waitFor(() => why.test(c.stderr()), 3_000, 'connect to say why');
    };
    return { t, c, conn, cut };
  }

  it('deleting the target cuts the connections to it', async () => {
    const { t, c, cut } = await openTo('doomed');
    try {
      expect((await s.admin.client.delete(`/api/v1/access-targets/${t.id}`)).status).toBe(204);
      await cut(/closed: access target doomed was deleted$/m);
    } finally {
      await c.stop();
    }
  });

  it('repointing the target cuts its connections; editing its description does not', async () => {
    const { t, c, conn, cut } = await openTo('moving');
    try {
      const described = await s.admin.client.patch(`/api/v1/access-targets/${t.id}`, {
        description: 'still the hash service',
      });
      expect(described.status).toBe(200);
      // The re-check after a change runs within ~50 ms; this one leaves the connection open.
      await sleep(500);
      expect(conn.isClosed()).toBe(false);
      const moved = await s.admin.client.patch(`/api/v1/access-targets/${t.id}`, { port: 1 });
      expect(moved.status).toBe(200);
      await cut(/access target moving now points at 127\.0\.0\.1:1: connect again/);
    } finally {
      await c.stop();
    }
  });
  it("a standby's predialled PostgreSQL connection does not outlive a revocation: the open is refused and none stays open", async () => {
    await s.target({ name: 'pg-rev', host: PG.host, port: PG.port, protocol: 'postgres' });
    const bot = await addIdentity(s.tp, s.admin, 'member');
    const c = await startConnect('pg-rev', env(bot.token));
    const predialsOpen = () => metric(s.tp.url, 'gatepool_access_predials_open');
    try {
      await waitFor(async () => (await predialsOpen()) >= 1, 5_000, 'a predial while it waits');
      const revoke = await s.admin.client.delete(
        `/api/v1/identities/${bot.id}/tokens/${bot.tokenId}`,
      );
      expect(revoke.status).toBe(204);
      const client = localPg(c.port);
      await expect(client.connect()).rejects.toThrow();
      await waitFor(() => /refused: .*(revoked|token)/i.test(c.stderr()), 3_000, 'the refusal');
      await waitFor(async () => (await predialsOpen()) === 0, 3_000, 'no predial left open');
      // None comes back: refused standbys open nothing (a predial would be replaced at 40 s).
      await sleep(500);
      expect(await predialsOpen()).toBe(0);
    } finally {
      await c.stop();
    }
  });
});
