import { z } from 'zod';
import { actorOf } from '../auth/actor.js';
import { authenticate } from '../auth/authenticate.js';
import type { AppContext } from '../context.js';
import { AppError } from '../http/errors.js';
import type { Api } from '../http/schemas.js';
import { HealthEvents, TooManySubscribers, type HealthEvent } from './service.js';

const KEEPALIVE_MS = 15_000;
// A revoked or expired session stops receiving within this long.
const RECHECK_MS = 5_000;

export function eventRoutes(app: Api, ctx: AppContext): void {
  const events = new HealthEvents({
    source: ctx.poolRuntime,
    onError: (err) => ctx.log.warn({ err: (err as Error).message }, 'health snapshot failed'),
  });
  const streams = new Set<(reason?: string) => void>();
  // Open streams would keep the HTTP server from closing: end them first.
  app.addHook('preClose', async () => {
    for (const close of [...streams]) close('The platform is shutting down.');
    events.close();
  });

  app.get(
    '/api/v1/events',
    {
      config: { permission: ['read', 'Gateway'] },
      schema: {
        tags: ['events'],
        operationId: 'streamEvents',
        summary:
          'Server-Sent Events: a `snapshot` of gateway and pool health, then `health` changes as they happen',
        response: { 200: z.string().describe('text/event-stream') },
      },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      // Pool names are not for roles that may not list pools.
      const seesPools = actor.ability.can('list', 'GatewayPool');
      const res = reply.raw;
      let open = true;
      const write = (chunk: string) => {
        if (open) res.write(chunk);
      };
      const send = (event: HealthEvent) => {
        const data = seesPools
          ? event.data
          : event.type === 'snapshot'
            ? { ...event.data, pools: [] }
            : { ...event.data, pools: [], removedPools: [] };
        write(`event: ${event.type}\ndata: ${JSON.stringify(data)}\n\n`);
      };
      if (!events.hasRoom(actor.orgId)) {
        throw new AppError(
          503,
          'too_many_streams',
          'Too many live event streams are open; close other tabs (the page falls back to polling).',
        );
      }
      let unsubscribe = () => undefined as void;
      reply.hijack();
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        'x-accel-buffering': 'no',
        connection: 'keep-alive',
      });
      write('retry: 2000\n\n');
      const close = (reason?: string) => {
        if (!open) return;
        if (reason) write(`event: end\ndata: ${JSON.stringify({ reason })}\n\n`);
        open = false;
        clearInterval(keepalive);
        clearInterval(recheck);
        streams.delete(close);
        unsubscribe();
        res.end();
      };
      streams.add(close);
      const keepalive = setInterval(() => write(': keepalive\n\n'), KEEPALIVE_MS);
      const recheck = setInterval(() => {
        authenticate(ctx, req).then(
          () => undefined,
          () => close('Your session ended: sign in again.'),
        );
      }, RECHECK_MS);
      req.raw.on('close', () => close());
      try {
        unsubscribe = await events.subscribe(actor.orgId, { send });
      } catch (err) {
        ctx.log.warn({ err: (err as Error).message }, 'event stream could not start');
        close(
          err instanceof TooManySubscribers
            ? 'Too many live event streams are open.'
            : 'Live health is unavailable right now.',
        );
      }
      if (!open) unsubscribe();
    },
  );
}
