import http from 'node:http';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import { Duplex } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  parseKubernetesHost,
  tokenReview,
  type ApiServer,
  type TokenReviewParams,
} from '../../src/server/kubernetes-auth/token-review.js';
import {
  createServingCert,
  createTestCa,
  startKubeApi,
  type KubeApi,
} from '../fixtures/kube-api.js';

let kube: KubeApi;
let server: ApiServer;

beforeAll(async () => {
  kube = await startKubeApi();
  server = { host: kube.host, port: kube.port, basePath: '' };
});
afterAll(async () => kube.close());

const review = (p: Partial<TokenReviewParams> & { token: string }) =>
  tokenReview({
    server,
    caCert: kube.caCert,
    bearerToken: kube.reviewerToken,
    timeoutMs: 5_000,
    ...p,
  });

describe('parseKubernetesHost', () => {
  it('accepts https URLs with optional port and prefix', () => {
    expect(parseKubernetesHost('https://10.0.0.1:6443')).toEqual({
      host: '10.0.0.1',
      port: 6443,
      basePath: '',
    });
    expect(parseKubernetesHost('https://k8s.example.com')).toEqual({
      host: 'k8s.example.com',
      port: 443,
      basePath: '',
    });
    expect(parseKubernetesHost('https://[::1]:6443/')).toEqual({
      host: '::1',
      port: 6443,
      basePath: '',
    });
    expect(parseKubernetesHost('https://proxy.example.com/clusters/a/')).toEqual({
      host: 'proxy.example.com',
      port: 443,
      basePath: '/clusters/a',
    });
  });
  it('refuses anything else', () => {
    for (const bad of [
      'http://10.0.0.1',
      'k8s.example.com',
      '',
      'https://u:p@h',
      'https://h/?q=1',
      'ftp://h',
    ]) {
      expect(parseKubernetesHost(bad)).toBeNull();
    }
  });
});

describe('tokenReview over a direct TCP connection', () => {
  it('authenticates a service-account token and reports user and audiences', async () => {
    const token = await kube.serviceAccountToken({ namespace: 'apps', name: 'web', pod: 'web-0' });
    const r = await review({ token });
    expect(r).toMatchObject({
      ok: true,
      user: {
        username: 'system:serviceaccount:apps:web',
        groups: ['system:serviceaccounts', 'system:serviceaccounts:apps', 'system:authenticated'],
      },
      audiences: [kube.issuer],
    });
    if (r.ok) {
      expect(r.user.uid).toMatch(/^[0-9a-f-]{36}$/);
      expect(r.user.extra['authentication.kubernetes.io/pod-name']).toEqual(['web-0']);
    }
    // The reviewer credential was the bearer; the reviewed token travelled in spec.token.
    const last = kube.requests.at(-1);
    expect(last?.bearer).toBe(kube.reviewerToken);
    expect(JSON.parse(last?.body ?? '{}')).toMatchObject({
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenReview',
      spec: { token },
    });
  });

  it('passes audiences and reports the intersection', async () => {
    const token = await kube.serviceAccountToken({
      namespace: 'apps',
      name: 'web',
      audiences: ['gatepool', 'other'],
    });
    const r = await review({ token, audiences: ['gatepool'] });
    expect(r).toMatchObject({ ok: true, audiences: ['gatepool'] });
  });

  it.each([
    [
      'expired',
      async () => kube.serviceAccountToken({ namespace: 'apps', name: 'web', expiresIn: -10 }),
      /expired/,
    ],
    ['garbage', async () => 'not-a-jwt', /invalid bearer token/],
    [
      'signed by another cluster',
      async () => {
        const other = await startKubeApi();
        try {
          return await other.serviceAccountToken({ namespace: 'apps', name: 'web' });
        } finally {
          await other.close();
        }
      },
      /invalid bearer token/,
    ],
  ])('reports a %s token as not authenticated', async (_name, make, message) => {
    const r = await review({ token: await make() });
    expect(r).toMatchObject({ ok: false, reason: 'not_authenticated' });
    if (!r.ok) expect(r.message).toMatch(message);
  });

  it('reports an audience mismatch as not authenticated, naming the audiences', async () => {
    const token = await kube.serviceAccountToken({
      namespace: 'apps',
      name: 'web',
      audiences: ['vault'],
    });
    const r = await review({ token, audiences: ['gatepool'] });
    expect(r).toMatchObject({ ok: false, reason: 'not_authenticated' });
    if (!r.ok) expect(r.message).toMatch(/audiences/);
  });

  it('reports a deleted service account as not authenticated', async () => {
    const token = await kube.serviceAccountToken({ namespace: 'apps', name: 'gone' });
    expect(await review({ token })).toMatchObject({ ok: true });
    kube.deleteServiceAccount({ namespace: 'apps', name: 'gone' });
    expect(await review({ token })).toMatchObject({ ok: false, reason: 'not_authenticated' });
  });

  it('categorises a rejected reviewer token as reviewer_unauthorized (401)', async () => {
    const token = await kube.serviceAccountToken({ namespace: 'apps', name: 'web' });
    const bad = await review({ token, bearerToken: 'eyJhbGciOiJFUzI1NiJ9.e30.bad' });
    expect(bad).toMatchObject({ ok: false, reason: 'reviewer_unauthorized', httpStatus: 401 });
    const none = await review({ token, bearerToken: null });
    expect(none).toMatchObject({ ok: false, reason: 'reviewer_unauthorized', httpStatus: 401 });
    // The message never carries the credential.
    if (!bad.ok) expect(bad.message).not.toContain('bad');
  });

  it('categorises a reviewer without permission as reviewer_forbidden (403)', async () => {
    const sa = { namespace: 'apps', name: 'no-delegator' };
    const reviewer = await kube.serviceAccountToken(sa);
    const token = await kube.serviceAccountToken({ namespace: 'apps', name: 'web' });
    const r = await review({ token, bearerToken: reviewer });
    expect(r).toMatchObject({ ok: false, reason: 'reviewer_forbidden', httpStatus: 403 });
    if (!r.ok) expect(r.message).toMatch(/cannot create resource "tokenreviews"/);
    kube.setTokenReviewPermission(sa, true);
    expect(await review({ token, bearerToken: reviewer })).toMatchObject({ ok: true });
  });

  it('lets a login token review itself when it may create tokenreviews', async () => {
    const sa = { namespace: 'apps', name: 'self-reviewer' };
    const token = await kube.serviceAccountToken(sa);
    expect(await review({ token, bearerToken: token })).toMatchObject({
      ok: false,
      reason: 'reviewer_forbidden',
    });
    kube.setTokenReviewPermission(sa, true);
    expect(await review({ token, bearerToken: token })).toMatchObject({
      ok: true,
      user: { username: 'system:serviceaccount:apps:self-reviewer' },
    });
  });

  it('fails TLS verification against the wrong CA or the system CAs', async () => {
    const token = await kube.serviceAccountToken({ namespace: 'apps', name: 'web' });
    const other = await createTestCa('some-other-ca');
    const before = kube.requests.length;
    const wrong = await review({ token, caCert: other.certPem });
    expect(wrong).toMatchObject({ ok: false, reason: 'tls' });
    if (!wrong.ok) expect(wrong.message).toMatch(/TLS verification/);
    expect(await review({ token, caCert: '' })).toMatchObject({ ok: false, reason: 'tls' });
    // Nothing (and so no reviewer token) was sent to an unverified server.
    expect(kube.requests.length).toBe(before);
  });

  it('fails TLS verification when the certificate does not name the host', async () => {
    const ca = await createTestCa();
    const cert = await createServingCert(ca, ['kubernetes.internal']);
    const srv = https.createServer({ cert: cert.certPem, key: cert.keyPem }, (_q, s) =>
      s.end('{}'),
    );
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    try {
      const port = (srv.address() as AddressInfo).port;
      const r = await tokenReview({
        server: { host: '127.0.0.1', port, basePath: '' },
        caCert: ca.certPem,
        token: 't',
      });
      expect(r).toMatchObject({ ok: false, reason: 'tls' });
    } finally {
      srv.close();
    }
  });

  it('says a plain-HTTP server is not speaking TLS, without OpenSSL internals', async () => {
    const srv = http.createServer((_q, s) => s.end('{}'));
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    try {
      const port = (srv.address() as AddressInfo).port;
      const r = await review({ server: { host: '127.0.0.1', port, basePath: '' }, token: 't' });
      expect(r).toMatchObject({ ok: false, reason: 'tls' });
      if (!r.ok) {
        expect(r.message).toMatch(/TLS handshake .* failed .*plain HTTP/);
        expect(r.message).not.toMatch(/SSL routines|\.c:\d+|0A0000/);
      }
    } finally {
      srv.close();
    }
  });

  it('answers a bearer an HTTP header cannot carry with a result, sending nothing', async () => {
    const before = kube.requests.length;
    for (const bearerToken of ['a.b.c\r\nX-Injected: 1', 'a.b.c\u0000', 'a.b.\u0100', 'a b.c'])
      expect(await review({ token: 'x.y.z', bearerToken })).toMatchObject({
        ok: false,
        reason: 'reviewer_unauthorized',
      });
    expect(kube.requests.length).toBe(before);
  });

  it('dials a checked address while verifying the certificate for the name', async () => {
    const named = { ...server, host: 'kubernetes.default.svc' };
    const token = await kube.serviceAccountToken({ namespace: 'apps', name: 'web' });
    expect(await review({ server: named, token, dialAddress: '127.0.0.1' })).toMatchObject({
      ok: true,
    });
    // The name itself does not resolve here: without the pinned address nothing is reached.
    expect(await review({ server: named, token })).toMatchObject({
      ok: false,
      reason: 'unreachable',
    });
    // A pinned address does not widen what the certificate must name.
    expect(
      await review({
        server: { ...server, host: 'other.example' },
        token,
        dialAddress: '127.0.0.1',
      }),
    ).toMatchObject({ ok: false, reason: 'tls' });
  });

  it('reports a closed port as unreachable', async () => {
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const r = await review({ token: 'x', server: { host: '127.0.0.1', port, basePath: '' } });
    expect(r).toMatchObject({ ok: false, reason: 'unreachable' });
    if (!r.ok) expect(r.message).toMatch(/ECONNREFUSED/);
  });

  it('gives up after the timeout', async () => {
    kube.setDelay(1_000);
    try {
      const started = Date.now();
      const r = await review({ token: 'x', timeoutMs: 200 });
      expect(r).toMatchObject({ ok: false, reason: 'timeout' });
      expect(Date.now() - started).toBeLessThan(900);
    } finally {
      kube.setDelay(0);
    }
  });

  it.each([
    [200, '{"kind":"Pod","apiVersion":"v1"}', 'bad_response'],
    [200, '<html>proxy login</html>', 'bad_response'],
    [
      500,
      '{"kind":"Status","apiVersion":"v1","message":"etcd is down","code":500}',
      'bad_response',
    ],
    [
      404,
      '{"kind":"Status","apiVersion":"v1","message":"the server could not find the requested resource","code":404}',
      'bad_response',
    ],
  ])('reports an answer %i %s as %s', async (code, body, reason) => {
    const ca = await createTestCa();
    const cert = await createServingCert(ca, ['127.0.0.1']);
    const srv = https.createServer({ cert: cert.certPem, key: cert.keyPem }, (_q, s) => {
      s.writeHead(code, { 'content-type': 'application/json' });
      s.end(body);
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    try {
      const port = (srv.address() as AddressInfo).port;
      const r = await tokenReview({
        server: { host: '127.0.0.1', port, basePath: '' },
        caCert: ca.certPem,
        token: 't',
      });
      expect(r).toMatchObject({ ok: false, reason, httpStatus: code });
      if (!r.ok && code >= 400) expect(r.message).toContain(JSON.parse(body).message);
    } finally {
      srv.close();
    }
  });
});

/** A generic Duplex (not a net.Socket) relaying to a TCP connection, recording what it carries. */
function relayStream(port: number): { stream: Duplex; seen: Buffer[]; closed: Promise<void> } {
  const seen: Buffer[] = [];
  const sock = net.connect(port, '127.0.0.1');
  let ended!: () => void;
  const closed = new Promise<void>((r) => (ended = r));
  const stream = new Duplex({
    write(chunk: Buffer, _enc, cb) {
      seen.push(chunk);
      sock.write(chunk, cb);
    },
    final(cb) {
      sock.end();
      cb();
    },
    read() {},
    destroy(err, cb) {
      sock.destroy();
      cb(err);
    },
  });
  sock.on('data', (c: Buffer) => {
    seen.push(c);
    stream.push(c);
  });
  sock.on('end', () => stream.push(null));
  sock.on('close', () => ended());
  sock.on('error', (err) => stream.destroy(err));
  return { stream, seen, closed };
}

describe('tokenReview over a provided stream (as through a gateway)', () => {
  it('runs TLS end to end: the relay sees only ciphertext, and the stream is ended cleanly', async () => {
    const token = await kube.serviceAccountToken({ namespace: 'apps', name: 'web' });
    const relay = relayStream(kube.port);
    const r = await review({ token, stream: relay.stream });
    expect(r).toMatchObject({ ok: true, user: { username: 'system:serviceaccount:apps:web' } });
    await relay.closed;
    const all = Buffer.concat(relay.seen).toString('latin1');
    expect(all.length).toBeGreaterThan(500);
    for (const secret of [kube.reviewerToken, token, 'tokenreviews', 'system:serviceaccount']) {
      expect(all).not.toContain(secret);
    }
  });

  it('reports TLS failure over a stream too', async () => {
    const other = await createTestCa();
    const relay = relayStream(kube.port);
    const r = await review({ token: 'x', stream: relay.stream, caCert: other.certPem });
    expect(r).toMatchObject({ ok: false, reason: 'tls' });
  });

  it('reports a stream that dies before the answer as unreachable', async () => {
    const stream = new Duplex({
      write(_c, _e, cb) {
        cb();
        setImmediate(() => stream.destroy(new Error('tunnel stream reset')));
      },
      read() {},
    });
    const r = await review({ token: 'x', stream });
    expect(r).toMatchObject({ ok: false, reason: 'unreachable' });
  });
});
