/**
 * Serves the web UI built into dist/web: hashed assets as files, every other browser path
 * the app's index.html (the client router takes it from there). The API, metrics and
 * health endpoints keep their JSON 404s.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { noRoute } from '../http/error-handler.js';

const NOT_UI = /^\/(api|metrics|healthz|readyz)(\/|$|\?)/;

/** dist/web of this package, from src/ (tests, tsx) as from dist/ (built). */
export function defaultWebRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'package.json'))) return join(dir, 'dist', 'web');
    dir = dirname(dir);
  }
  return join(process.cwd(), 'dist', 'web');
}

/** The app's policy: only its own scripts, styles by nonce (dialogs inject one style tag). */
export function contentSecurityPolicy(nonce: string): string {
  return [
    "default-src 'self'",
    "script-src 'self'",
    `style-src 'self' 'nonce-${nonce}'`,
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
}

function securityHeaders(reply: FastifyReply): FastifyReply {
  return reply
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('x-frame-options', 'DENY')
    .header('cross-origin-opener-policy', 'same-origin');
}

export function serveWeb(app: FastifyInstance, root = defaultWebRoot()): void {
  const indexFile = join(root, 'index.html');
  const built = existsSync(indexFile);
  // Read once: the build is immutable while the platform runs.
  const index = built ? readFileSync(indexFile, 'utf8') : undefined;

  if (built) {
    void app.register(fastifyStatic, {
      root,
      prefix: '/',
      wildcard: false,
      index: false,
      cacheControl: false,
      // index.html needs a fresh nonce per answer: the fallback below serves it.
      allowedPath: (path) => path !== '/index.html',
      setHeaders: (res, path) => {
        res.setHeader('x-content-type-options', 'nosniff');
        res.setHeader(
          'cache-control',
          path.includes('/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache',
        );
      },
    });
  }

  const page = (_: unknown, reply: FastifyReply) => {
    const nonce = randomBytes(16).toString('base64');
    securityHeaders(reply)
      .header('content-security-policy', contentSecurityPolicy(nonce))
      .header('cache-control', 'no-store')
      .type('text/html; charset=utf-8');
    if (!index) {
      return reply
        .code(503)
        .send(
          '<!doctype html><title>gatepool</title><p>The web UI is not built: run <code>npm run build</code> and restart. The API is at <a href="/api/docs">/api/docs</a>.</p>',
        );
    }
    return reply.send(index.replaceAll('%CSP_NONCE%', nonce));
  };

  app.get('/', { schema: { hide: true } }, page);
  app.get('/*', { schema: { hide: true } }, (req, reply) => {
    if (NOT_UI.test(req.url)) {
      return reply.code(404).send(noRoute(req.method, req.url));
    }
    // A missing asset is a 404, not the app shell (which would fail as a script).
    if (/\.[a-z0-9]+$/i.test(req.url.split('?')[0] ?? '')) {
      return reply.code(404).type('text/plain').send('Not found');
    }
    return page(req, reply);
  });
}
