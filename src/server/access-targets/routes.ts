import { ServerResponse, type IncomingMessage } from 'node:http';
import { isIP, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { z } from 'zod';
import { MAX_MESSAGE_BYTES, WsStream } from '../../protocol/access-stream.js';
import { actorOf, whoOf, type Actor } from '../auth/actor.js';
import type { AppContext } from '../context.js';
import { AppError, badRequest, unauthorized } from '../http/errors.js';
import { errorBody, pageQuery, slug, type Api } from '../http/schemas.js';
import { AccessConnector, AccessMetrics } from './connector.js';
import type { AccessTargetListing } from './queries.js';
import { AccessTargetService, looksLikeId, PROTOCOLS } from './service.js';

const HOSTNAME =
  /^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62}))*\.?$/;

const name = slug('name', 63).refine(
  (v) => !looksLikeId(v),
  'name must not look like a UUID (targets are addressed by id or name)',
);
const host = z
  .string()
  .trim()
  .min(1, 'host must not be empty')
  .max(253, 'host must be at most 253 characters')
  .refine(
    (v) => isIP(v) !== 0 || HOSTNAME.test(v),
    'host must be a hostname or an IP address, e.g. "db.internal" or "10.0.0.5"',
  );
const port = z
  .number()
  .int('port must be a whole number')
  .min(1, 'port must be between 1 and 65535')
  .max(65535, 'port must be between 1 and 65535');
const protocol = z.enum(PROTOCOLS, {
  error: `protocol must be one of ${PROTOCOLS.join(', ')}`,
});
const description = z
  .string()
  .trim()
  .max(1000, 'description must be at most 1000 characters')
  .refine((s) => !s.includes('\u0000'), 'description must not contain NUL characters');
const gatewayId = z.uuid('gatewayId must be a UUID');
const gatewayPoolId = z.uuid('gatewayPoolId must be a UUID');

const createBody = z
  .strictObject({
    name,
    host,
    port,
    protocol,
    description: description.optional(),
    gatewayId: gatewayId.optional(),
    gatewayPoolId: gatewayPoolId.optional(),
  })
  .refine((b) => !!b.gatewayId !== !!b.gatewayPoolId, {
    message: 'give exactly one of gatewayId and gatewayPoolId: the path to the target',
    path: ['gatewayPoolId'],
  });
const patchBody = z
  .strictObject({
    name: name.optional(),
    host: host.optional(),
    port: port.optional(),
    protocol: protocol.optional(),
    description: description.optional(),
    gatewayId: gatewayId.optional(),
    gatewayPoolId: gatewayPoolId.optional(),
  })
  .refine((b) => Object.keys(b).length > 0, 'give at least one field to change')
  .refine((b) => !(b.gatewayId && b.gatewayPoolId), {
    message: 'give at most one of gatewayId and gatewayPoolId',
    path: ['gatewayPoolId'],
  });
const params = z.object({
  target: z
    .string()
    .min(1, 'target must be an access target id or name')
    .max(100, 'target must be an access target id or name'),
});

const named = z.object({ id: z.string(), name: z.string() }).nullable();
const targetView = z.object({
  id: z.string(),
  name: z.string(),
  host: z.string(),
  port: z.number(),
  protocol: z.enum(PROTOCOLS),
  description: z.string(),
  gatewayId: z.string().nullable(),
  gatewayPoolId: z.string().nullable(),
  gateway: named,
  gatewayPool: named,
  /** Whether the caller may open connections to it (AccessTarget:connect). */
  canConnect: z.boolean(),
  createdAt: z.string(),
  updatedAt: z.string(),
});

function view(t: AccessTargetListing, actor: Actor): z.infer<typeof targetView> {
  return {
    id: t.id,
    name: t.name,
    host: t.host,
    port: t.port,
    protocol: t.protocol,
    description: t.description,
    gatewayId: t.gatewayId,
    gatewayPoolId: t.gatewayPoolId,
    gateway: t.gatewayId ? { id: t.gatewayId, name: t.gatewayName ?? '' } : null,
    gatewayPool: t.gatewayPoolId ? { id: t.gatewayPoolId, name: t.gatewayPoolName ?? '' } : null,
    canConnect: actor.ability.can('connect', 'AccessTarget'),
    createdAt: t.createdAt.toISOString(),
    updatedAt: t.updatedAt.toISOString(),
  };
}

/** What the WebSocket handshake needs, checked before a tunnel stream is opened for it. */
function handshakeProblem(req: IncomingMessage): string | null {
  if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket')
    return 'only "Upgrade: websocket" is supported';
  if (!/^[+/0-9A-Za-z]{22}==$/.test(req.headers['sec-websocket-key'] ?? ''))
    return 'Sec-WebSocket-Key is missing or malformed';
  if (!['8', '13'].includes(req.headers['sec-websocket-version'] ?? ''))
    return 'Sec-WebSocket-Version must be 13';
  return null;
}

function sendError(res: ServerResponse, err: unknown): void {
  if (res.headersSent || res.destroyed) return;
  const known = err instanceof AppError;
  const body = JSON.stringify({
    error: {
      code: known ? err.code : 'internal_error',
      message: known ? err.message : 'The connection failed on the platform; see its log.',
      ...(known && err.details !== undefined ? { details: err.details } : {}),
    },
  });
  res.writeHead(known ? err.statusCode : 500, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    connection: 'close',
  });
  res.end(body);
}

export function accessTargetRoutes(app: Api, ctx: AppContext): void {
  const tags = ['access targets'];
  const service = new AccessTargetService({
    db: ctx.db,
    audit: ctx.audit,
    licenses: ctx.licenses,
  });
  const connector = new AccessConnector({
    run: (...args) => ctx.poolRuntime.run(...args),
    audit: ctx.audit,
    metrics: new AccessMetrics(ctx.metrics.registry),
    log: ctx.log.child({ component: 'access' }),
  });
  const errors = { 400: errorBody, 401: errorBody, 403: errorBody, 404: errorBody };

  app.get(
    '/api/v1/access-targets',
    {
      config: { permission: ['list', 'AccessTarget'] },
      schema: {
        tags,
        operationId: 'listAccessTargets',
        summary: 'List access targets (host:port reached with `gatepool connect`)',
        querystring: pageQuery,
        response: {
          200: z.object({ items: z.array(targetView), nextCursor: z.string().nullable() }),
        },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      const page = await service.list(actor.orgId, req.query);
      return { items: page.items.map((t) => view(t, actor)), nextCursor: page.nextCursor };
    },
  );

  app.post(
    '/api/v1/access-targets',
    {
      config: { permission: ['create', 'AccessTarget'] },
      schema: {
        tags,
        operationId: 'createAccessTarget',
        summary: 'Create an access target behind a gateway or gateway pool',
        body: createBody,
        response: { 201: targetView, ...errors, 409: errorBody },
      },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      const created = await service.create(actor, whoOf(req), req.body);
      return reply.code(201).send(view(created, actor));
    },
  );

  app.get(
    '/api/v1/access-targets/:target',
    {
      config: { permission: ['list', 'AccessTarget'] },
      schema: {
        tags,
        operationId: 'getAccessTarget',
        summary: 'One access target, by id or name',
        params,
        response: { 200: targetView },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      return view(await service.find(actor.orgId, req.params.target), actor);
    },
  );

  app.patch(
    '/api/v1/access-targets/:target',
    {
      config: { permission: ['edit', 'AccessTarget'] },
      schema: {
        tags,
        operationId: 'updateAccessTarget',
        summary: 'Change an access target (giving gatewayId or gatewayPoolId replaces the other)',
        params,
        body: patchBody,
        response: { 200: targetView },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      return view(await service.update(actor, whoOf(req), req.params.target, req.body), actor);
    },
  );

  app.delete(
    '/api/v1/access-targets/:target',
    {
      config: { permission: ['delete', 'AccessTarget'] },
      schema: {
        tags,
        operationId: 'deleteAccessTarget',
        summary: 'Delete an access target (open connections keep running until they end)',
        params,
        response: { 204: z.null() },
      },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      await service.remove(actor.orgId, whoOf(req), req.params.target);
      return reply.code(204).send(null);
    },
  );

  // -------------------------------------------------------------------------------------
  // Client streams. Upgrade requests are routed through Fastify like any request, so the auth
  // hook (token, AccessTarget:connect) and error answers apply unchanged; the handler then
  // takes the socket over.
  const upgrades = new WeakMap<IncomingMessage, { socket: Duplex; head: Buffer }>();
  const wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    maxPayload: MAX_MESSAGE_BYTES,
  });
  app.server.on('upgrade', (raw: IncomingMessage, socket: Duplex, head: Buffer) => {
    // Until ws owns the socket, a client reset must not crash the process.
    socket.on('error', () => undefined);
    upgrades.set(raw, { socket, head });
    const res = new ServerResponse(raw);
    res.assignSocket(socket as Socket);
    // An answer other than the upgrade (401, 403, 404, 503) ends the exchange.
    res.on('finish', () => socket.end());
    app.routing(raw, res);
  });
  app.addHook('preClose', async () => {
    connector.closeAll();
    wss.close();
  });

  app.get(
    '/api/v1/access-targets/:target/connect',
    {
      config: { permission: ['connect', 'AccessTarget'] },
      schema: {
        tags,
        operationId: 'connectAccessTarget',
        summary:
          'Open a connection to the target: a WebSocket upgrade (binary messages carry the bytes; a text "end" is a half-close). Without an upgrade, returns the target as the caller may use it.',
        params,
        response: { 200: targetView, ...errors, 503: errorBody },
      },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      const target = await service.find(actor.orgId, req.params.target);
      const upgrade = upgrades.get(req.raw);
      if (!upgrade) return view(target, actor);
      // A browser can open a WebSocket with the user's cookie from any site: streams take
      // bearer tokens only, which a page cannot attach to a WebSocket.
      if (!req.headers.authorization)
        throw unauthorized(
          'Client streams need "Authorization: Bearer <token>" (cookies are not accepted).',
        );
      const problem = handshakeProblem(req.raw);
      if (problem) throw badRequest(`Cannot open a client stream: ${problem}.`);
      reply.hijack();
      let settled = false;
      const accept = () =>
        new Promise<WsStream | null>((resolve) => {
          const gone = () => {
            if (!settled) {
              settled = true;
              resolve(null);
            }
          };
          if (upgrade.socket.destroyed) return gone();
          upgrade.socket.once('close', gone);
          wss.handleUpgrade(req.raw, upgrade.socket, upgrade.head, (ws) => {
            upgrade.socket.off('close', gone);
            if (settled) return void ws.terminate();
            settled = true;
            resolve(new WsStream(ws));
          });
        });
      connector.connect(actor.orgId, whoOf(req), target, accept).catch((err: unknown) => {
        if (!(err instanceof AppError)) req.log.error({ err }, 'access connection failed');
        if (!settled) sendError(reply.raw, err);
        else upgrade.socket.destroy();
      });
      return reply;
    },
  );
}
