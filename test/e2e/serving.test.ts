/**
 * The platform serves the UI (SPA fallback, strict CSP, cached assets) without shadowing the
 * API, and streams live health over SSE: a snapshot on connect, changes as they happen,
 * org-scoped, closed when the session ends. Real platform, real agent, plain HTTP.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentFleet } from '../helpers/gateway-agent.js';
import {
  addUser,
  api,
  bootstrap,
  createSecondOrg,
  DRIVERS,
  login,
  startTestPlatform,
  waitFor,
  type Account,
  type TestPlatform,
} from '../helpers/platform.js';
import { ensureWebBuilt } from './browser.js';

interface SseEvent {
  event: string;
  data: unknown;
  at: number;
}

/** An open event stream collecting parsed events; every wait is bounded. */
async function openStream(url: string, headers: Record<string, string>) {
  const ctl = new AbortController();
  const res = await fetch(`${url}/api/v1/events`, { headers, signal: ctl.signal });
  const events: SseEvent[] = [];
  let ended = false;
  const done = (async () => {
    if (!res.body) return;
    const decoder = new TextDecoder();
    let buf = '';
    try {
      for await (const chunk of res.body) {
        buf += decoder.decode(chunk as Uint8Array, { stream: true });
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const ev = /^event: (.+)$/m.exec(block)?.[1];
          const data = /^data: (.+)$/m.exec(block)?.[1];
          if (ev && data) events.push({ event: ev, data: JSON.parse(data), at: Date.now() });
        }
      }
    } catch {
      // aborted by close()
    }
    ended = true;
  })();
  const next = async (pred: (e: SseEvent) => boolean, ms: number): Promise<SseEvent> => {
    const end = Date.now() + ms;
    for (;;) {
      const hit = events.find(pred);
      if (hit) return hit;
      if (Date.now() > end)
        throw new Error(`no matching event in ${ms} ms; got ${JSON.stringify(events)}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  return {
    res,
    events,
    next,
    ended: () => ended,
    close: async () => {
      ctl.abort();
      await done;
    },
  };
}

type Gw = { id: string; name: string; health: string };

describe.each(DRIVERS)('web serving and live events on %s', (driver) => {
  let tp: TestPlatform;
  let admin: Account;
  const fleet = new AgentFleet();

  beforeAll(async () => {
    await ensureWebBuilt();
    tp = await startTestPlatform(driver);
    admin = await bootstrap(tp);
  }, 120_000);
  afterAll(async () => {
    await fleet.close();
    await tp?.close();
  });

  it('serves the app at / and any UI path, with a strict CSP carrying a fresh nonce', async () => {
    const a = await api(tp).get('/');
    const b = await api(tp).get('/gateways/some/deep/link?view=pools');
    for (const r of [a, b]) {
      expect(r.status).toBe(200);
      expect(r.headers['content-type']).toMatch(/text\/html/);
      const csp = r.headers['content-security-policy'] ?? '';
      expect(csp).toContain("script-src 'self'");
      expect(csp).toContain("object-src 'none'");
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).not.toContain('unsafe-inline');
      const nonce = /'nonce-([^']+)'/.exec(csp)?.[1];
      expect(nonce).toBeTruthy();
      expect(r.text).toContain(`<meta name="csp-nonce" content="${nonce}"`);
      expect(r.headers['x-content-type-options']).toBe('nosniff');
    }
    expect(a.headers['content-security-policy']).not.toBe(b.headers['content-security-policy']);
    const script = /src="(\/assets\/[^"]+\.js)"/.exec(a.text)?.[1];
    expect(script).toBeTruthy();
    const asset = await api(tp).get(script!);
    expect(asset.status).toBe(200);
    expect(asset.headers['cache-control']).toContain('immutable');
  });

  it('keeps API, metrics and missing assets out of the fallback', async () => {
    const missing = await api(tp).get('/api/v1/no-such-route');
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('not_found');
    expect((await api(tp).get('/assets/nope-123.js')).status).toBe(404);
    expect((await api(tp).get('/healthz')).body).toEqual({ status: 'ok' });
    expect((await api(tp).get('/metrics')).headers['content-type']).toMatch(/text\/plain/);
    // The shell is never served without its policy, not even by its file name.
    const shell = await api(tp).get('/index.html');
    expect(shell.status === 404 || !!shell.headers['content-security-policy']).toBe(true);
  });

  it('refuses the event stream without credentials', async () => {
    const r = await api(tp).get('/api/v1/events');
    expect(r.status).toBe(401);
    expect(r.body.error.code).toBe('unauthorized');
  });

  it('streams a snapshot, then health changes as they happen, only to the gateway org', async () => {
    const token = await admin.client.post('/api/v1/gateways/enrollment-tokens', {
      ttlSeconds: 600,
    });
    expect(token.status).toBe(201);
    const agent = await fleet.start({
      platformUrl: tp.url,
      token: token.body.token,
      name: 'sse-gw',
    });
    const stream = await openStream(tp.url, { authorization: `Bearer ${admin.token}` });
    const other = await createSecondOrg(tp);
    const otherStream = await openStream(tp.url, { authorization: `Bearer ${other.token}` });
    try {
      expect(stream.res.headers.get('content-type')).toMatch(/text\/event-stream/);
      await stream.next((e) => e.event === 'snapshot', 5000);
      const healthy = (e: SseEvent) =>
        ((e.data as { gateways: Gw[] }).gateways ?? []).some(
          (g) => g.name === 'sse-gw' && g.health === 'healthy',
        );
      const seen = await stream.next(healthy, 20_000);
      const gwId = (seen.data as { gateways: Gw[] }).gateways.find((g) => g.name === 'sse-gw')!.id;

      const drain = await admin.client.post(`/api/v1/gateways/${gwId}/drain`);
      expect(drain.status).toBe(200);
      const t0 = Date.now();
      const draining = await stream.next(
        (e) =>
          e.event === 'health' &&
          (e.data as { gateways: Gw[] }).gateways.some(
            (g) => g.id === gwId && g.health === 'draining',
          ),
        2000,
      );
      expect(draining.at - t0).toBeLessThan(1000);

      const t1 = Date.now();
      agent.kill();
      const down = await stream.next(
        (e) =>
          e.event === 'health' &&
          (e.data as { gateways: Gw[] }).gateways.some(
            (g) => g.id === gwId && g.health === 'unreachable',
          ),
        3000,
      );
      expect(down.at - t1).toBeLessThan(2000);

      // The other org's stream never names this gateway.
      await otherStream.next((e) => e.event === 'snapshot', 5000);
      expect(JSON.stringify(otherStream.events)).not.toContain(gwId);
    } finally {
      await stream.close();
      await otherStream.close();
    }
  }, 60_000);

  it('ends the stream when its session is logged out', async () => {
    const viewer = await addUser(tp, admin, 'viewer');
    const { token } = await login(tp, viewer.email, viewer.password);
    const stream = await openStream(tp.url, { authorization: `Bearer ${token}` });
    try {
      await stream.next((e) => e.event === 'snapshot', 5000);
      const snap = stream.events[0]!.data as { pools: unknown[] };
      expect(Array.isArray(snap.pools)).toBe(true);
      const out = await api(tp, token).post('/api/v1/auth/logout', undefined, {
        headers: { 'x-gatepool-request': '1' },
      });
      expect(out.status).toBe(204);
      const end = await stream.next((e) => e.event === 'end', 8000);
      expect((end.data as { reason: string }).reason).toMatch(/session ended/);
      const deadline = Date.now() + 2000;
      while (!stream.ended() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(stream.ended()).toBe(true);
    } finally {
      await stream.close();
    }
  }, 20_000);

  it('ends the stream at once when the role loses Gateway:read, and hides pools when it loses GatewayPool:list', async () => {
    const slug = 'sse-watch';
    const perms = (list: [string, string][]) =>
      list.map(([subject, action]) => ({ subject, action }));
    const made = await admin.client.post('/api/v1/roles', {
      slug,
      name: 'SSE watcher',
      permissions: perms([
        ['Gateway', 'read'],
        ['GatewayPool', 'list'],
      ]),
    });
    expect(made.status).toBe(201);
    const watcher = await addUser(tp, admin, slug);
    const stream = await openStream(tp.url, { authorization: `Bearer ${watcher.token}` });
    try {
      await stream.next((e) => e.event === 'snapshot', 5000);
      const changed = await admin.client.patch(`/api/v1/roles/${slug}`, {
        permissions: perms([['AccessTarget', 'list']]),
      });
      expect(changed.status).toBe(200);
      // Well within the 5 s periodic recheck: the change itself triggers it.
      const end = await stream.next((e) => e.event === 'end', 2500);
      expect((end.data as { reason: string }).reason).toBe(
        'Your role no longer allows reading gateways.',
      );
    } finally {
      await stream.close();
    }
  }, 20_000);

  it('lets one caller hold at most 10 streams, leaving room for the rest of the organization', async () => {
    const hog = await addUser(tp, admin, 'viewer');
    const held: Awaited<ReturnType<typeof openStream>>[] = [];
    try {
      for (let i = 0; i < 10; i++) {
        const s = await openStream(tp.url, { authorization: `Bearer ${hog.token}` });
        held.push(s);
        await s.next((e) => e.event === 'snapshot', 5000);
      }
      const refused = await api(tp, hog.token).get('/api/v1/events');
      expect(refused.status).toBe(503);
      expect(refused.body.error.code).toBe('too_many_streams');
      expect(refused.body.error.message).toMatch(/You have 10 live event streams open/);
      const colleague = await openStream(tp.url, { authorization: `Bearer ${admin.token}` });
      held.push(colleague);
      await colleague.next((e) => e.event === 'snapshot', 5000);
      // A closed stream gives its slot back, once the platform has seen it close.
      await held.shift()!.close();
      await waitFor(
        async () => {
          const again = await openStream(tp.url, { authorization: `Bearer ${hog.token}` });
          held.push(again);
          return again.res.status === 200;
        },
        5000,
        'a slot back after a close',
      );
      await held.at(-1)!.next((e) => e.event === 'snapshot', 5000);
    } finally {
      for (const s of held) await s.close();
    }
  }, 30_000);
});
