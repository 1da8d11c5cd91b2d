import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import { isLoopback } from '../../protocol/loopback.js';

/** Headers a reverse proxy adds: a request carrying one came from elsewhere through this host. */
const FORWARDED = ['forwarded', 'x-forwarded-for', 'x-real-ip'];

/**
 * Whether a scrape without GATEPOOL_METRICS_TOKEN may read the metrics: only from this host,
 * and not through a proxy on it. They name every organization's pools, and the API port is
 * the one gateways and people reach from anywhere; a Prometheus elsewhere is given a token.
 */
export function metricsOpenTo(
  peer: string | undefined,
  headers: Record<string, string | string[] | undefined>,
): boolean {
  if (!peer || !isLoopback(peer)) return false;
  return FORWARDED.every((h) => headers[h] === undefined);
}

/** GET /metrics: Prometheus text, for a bearer token when one is set, else for this host only. */
export function metricsRoute(
  app: FastifyInstance,
  registry: Registry,
  token: string | undefined,
): void {
  const expected = token ? createHash('sha256').update(`Bearer ${token}`).digest() : undefined;
  app.get('/metrics', { schema: { hide: true } }, async (req, reply) => {
    if (expected) {
      const given = createHash('sha256')
        .update(req.headers.authorization ?? '')
        .digest();
      if (!timingSafeEqual(given, expected)) {
        return reply.code(401).send({
          error: {
            code: 'unauthorized',
            message: 'Send Authorization: Bearer <GATEPOOL_METRICS_TOKEN>.',
          },
        });
      }
    } else if (!metricsOpenTo(req.socket.remoteAddress, req.headers)) {
      return reply.code(403).send({
        error: {
          code: 'forbidden',
          message:
            'Metrics answer only on this host (they name every organization’s pools): set ' +
            'GATEPOOL_METRICS_TOKEN on the platform and scrape with Authorization: Bearer <token>.',
        },
      });
    }
    return reply.header('content-type', registry.contentType).send(await registry.metrics());
  });
}
