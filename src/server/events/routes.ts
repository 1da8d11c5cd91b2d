import { z } from 'zod';
import { actorOf } from '../auth/actor.js';
import { authenticate } from '../auth/authenticate.js';
import type { AppContext } from '../context.js';
import { UnauthenticatedError } from '../errors.js';
import { AppError } from '../http/errors.js';
import type { Api } from '../http/schemas.js';
import { HealthEvents, TooManySubscribers, type HealthEvent } from './service.js';

const KEEPALIVE_MS = 15_000;
// An expired session stops receiving within this long; a change made through the platform
// (revocation, an edited role, a removed member) is checked at once (credentials.onClear).
const RECHECK_MS = 5_000;
/** Streams one caller may hold: below the org's cap, so one person cannot take every slot. */
export const MAX_STREAMS_PER_CALLER = 10;

export function eventRoutes(app: Api, ctx: AppContext): void {
  const events = new HealthEvents({
    source: ctx.poolRuntime,
    onError: (err) => ctx.log.warn({ err: (err as Error).message }, 'health snapshot failed'),
  });
  const streams = new Set<(reason?: string) => void>();
  const perCaller = new Map<string, number>();
  const rechecks = new Set<() => void>();
  // Changes made through the platform clear the credential cache: check every stream then.
  ctx.credentials.onClear(() => {
    for (const recheck of [...rechecks]) recheck();
  });
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
      // Pool names are not for roles that may not list pools (checked again on every change).
      let seesPools = actor.ability.can('list', 'GatewayPool');
      const caller = `${actor.type}:${actor.id}`;
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
      if ((perCaller.get(caller) ?? 0) >= MAX_STREAMS_PER_CALLER) {
        throw new AppError(
          503,
          'too_many_streams',
          `You have ${MAX_STREAMS_PER_CALLER} live event streams open; close other tabs (this page falls back to polling).`,
        );
      }
      perCaller.set(caller, (perCaller.get(caller) ?? 0) + 1);
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
        clearInterval(timer);
        rechecks.delete(recheck);
        const left = (perCaller.get(caller) ?? 1) - 1;
        if (left > 0) perCaller.set(caller, left);
        else perCaller.delete(caller);
        streams.delete(close);
        unsubscribe();
        res.end();
      };
      streams.add(close);
      const keepalive = setInterval(() => write(': keepalive\n\n'), KEEPALIVE_MS);
      // The credential, the permission the route needs and what it may see, as at the open.
      const recheck = () => {
        authenticate(ctx, req).then(
          (now) => {
            if (now.orgId !== actor.orgId || !now.ability.can('read', 'Gateway'))
              close('Your role no longer allows reading gateways.');
            else seesPools = now.ability.can('list', 'GatewayPool');
          },
          (err: unknown) => {
            // An outage revokes nothing: the stream stays while the database is away.
            if (err instanceof UnauthenticatedError) close('Your session ended: sign in again.');
          },
        );
      };
      rechecks.add(recheck);
      const timer = setInterval(recheck, RECHECK_MS);
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
