import { isIP } from 'node:net';
import { z } from 'zod';
import { actorOf, auditActor, whoOf, type Actor } from '../auth/actor.js';
import { authenticate } from '../auth/authenticate.js';
import type { AppContext } from '../context.js';
import { badRequest, permissionDenied, unauthorized } from '../http/errors.js';
import { errorBody, pageQuery, reference, slug, type Api } from '../http/schemas.js';
import { AccessConnector, AccessMetrics } from './connector.js';
import type { AccessTargetListing } from './queries.js';
import {
  AccessTargetService,
  assertMayConnect,
  looksLikeId,
  mayConnect,
  PROTOCOLS,
} from './service.js';
import { ClientStreams, refusalOf } from './upgrade.js';

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
const protocol = z.enum(PROTOCOLS, { error: `protocol must be one of ${PROTOCOLS.join(', ')}` });
const description = z
  .string()
  .trim()
  .max(1000, 'description must be at most 1000 characters')
  .refine((s) => !s.includes('\u0000'), 'description must not contain NUL characters');
const gatewayId = reference('gatewayId', 'gateway');
const gatewayPoolId = reference('gatewayPoolId', 'gateway pool');

const createBody = z
  .strictObject({
    name,
    host,
    port,
    // A hint for clients (`gatepool connect` prints a psql line for postgres); bytes are bytes.
    protocol: protocol.default('tcp'),
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
const connectQuery = z.object({
  open: z
    .enum(['deferred'])
    .optional()
    .describe(
      '"deferred": complete the handshake at once and open the target when the client sends the text message "open" (answered "opened", or "refused <error body>" and close code 4001).',
    ),
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
  /** Whether the caller may open connections to it (AccessTarget:connect, on this target). */
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
    canConnect: mayConnect(actor, t),
    createdAt: t.createdAt.toISOString(),
    updatedAt: t.updatedAt.toISOString(),
  };
}

/** How long a save waits for its gateways' connect tests (see service reachWarnings). */
const REACH_TIMEOUT_MS = 2000;
/** A target opened ahead of a client (predial.ts) must open within this, or is not used. */
const PREDIAL_OPEN_TIMEOUT_MS = 5000;

/**
 * Create and change answer the target with `warnings`: what its gateways said when asked to
 * reach it (empty when they all can).
 */
const withWarnings = targetView.extend({ warnings: z.array(z.string()) });

export function accessTargetRoutes(app: Api, ctx: AppContext): void {
  const tags = ['access targets'];
  const service = new AccessTargetService({
    db: ctx.db,
    audit: ctx.audit,
    licenses: ctx.licenses,
    reach: async (orgId, ref, host, port) => {
      await ctx.poolRuntime.ensureLoaded();
      const { label, members } = ctx.poolRuntime.candidatesFor(orgId, ref);
      const connected = members.filter((m) => ctx.directory.liveOf(orgId, m.gatewayId));
      const answers = await Promise.all(
        connected.map(async (m) => {
          const outcome = await ctx.directory.hub.probe(m.gatewayId, host, port, REACH_TIMEOUT_MS);
          return outcome.ok
            ? { gateway: m.name, ok: true }
            : { gateway: m.name, ok: false, error: outcome.error };
        }),
      );
      return { label, total: members.length, answers };
    },
  });
  const connector = new AccessConnector({
    run: (...args) => ctx.poolRuntime.run(...args),
    audit: ctx.audit,
    metrics: new AccessMetrics(ctx.metrics.registry),
    log: ctx.log.child({ component: 'access' }),
    onCredentialsChanged: (listener) => ctx.credentials.onClear(listener),
    predial: ctx.config.accessPredial
      ? {
          open: (orgId, ref, target) =>
            ctx.poolRuntime.predial(orgId, ref, target, PREDIAL_OPEN_TIMEOUT_MS),
          trusts: (orgId, ref, gatewayId) => ctx.poolRuntime.trusts(orgId, ref, gatewayId),
        }
      : undefined,
  });
  const errors = { 400: errorBody, 401: errorBody, 403: errorBody, 404: errorBody };

  app.get(
    '/api/v1/access-targets',
    {
      config: { permission: ['list', 'AccessTarget'] },
      schema: {
        tags,
        operationId: 'listAccessTargets',
        summary:
          'List access targets (host:port reached with `gatepool connect`); a role whose AccessTarget:list is limited to some targets sees only those',
        querystring: pageQuery,
        response: {
          200: z.object({ items: z.array(targetView), nextCursor: z.string().nullable() }),
        },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      const page = await service.listSeen(actor, req.query);
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
        response: { 201: withWarnings, ...errors, 409: errorBody },
      },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      const created = await service.create(actor, whoOf(req), req.body);
      const warnings = await service.reachWarnings(actor.orgId, created);
      return reply.code(201).send({ ...view(created, actor), warnings });
    },
  );

  app.get(
    '/api/v1/access-targets/:target',
    {
      config: { permission: ['list', 'AccessTarget'] },
      schema: {
        tags,
        operationId: 'getAccessTarget',
        summary:
          'One access target, by id or name (404 for one outside a limited AccessTarget:list)',
        params,
        response: { 200: targetView },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      return view(await service.findSeen(actor, req.params.target), actor);
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
        response: { 200: withWarnings },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      const updated = await service.update(actor, whoOf(req), req.params.target, req.body);
      const { host, port, gatewayId, gatewayPoolId } = req.body;
      const repointed = [host, port, gatewayId, gatewayPoolId].some((v) => v !== undefined);
      const warnings = repointed ? await service.reachWarnings(actor.orgId, updated) : [];
      return { ...view(updated, actor), warnings };
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

  const streams = new ClientStreams(app);
  app.addHook('preClose', async () => connector.closeAll());

  app.get(
    '/api/v1/access-targets/:target/connect',
    {
      config: { permission: ['connect', 'AccessTarget'] },
      schema: {
        tags,
        operationId: 'connectAccessTarget',
        summary:
          'Open a connection to the target: a WebSocket upgrade (binary messages carry the bytes; a text "end" is a half-close). Without an upgrade, returns the target as the caller may use it. A target outside a limited AccessTarget:connect is a 403 naming it, or a 404 when the caller cannot list it either.',
        params,
        querystring: connectQuery,
        response: { 200: targetView, ...errors, 503: errorBody },
      },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      const target = await service.lookup(actor.orgId, req.params.target);
      assertMayConnect(actor, target, req.params.target);
      const upgrade = streams.pending(req.raw, reply.raw);
      if (!upgrade) return view(target, actor);
      // A browser can open a WebSocket with the user's cookie from any site: streams take
      // bearer tokens only, which a page cannot attach to a WebSocket.
      if (!req.headers.authorization)
        throw unauthorized(
          'Client streams need "Authorization: Bearer <token>" (cookies are not accepted).',
        );
      const problem = upgrade.problem();
      if (problem) throw badRequest(`Cannot open a client stream: ${problem}.`);
      reply.hijack();
      // The caller asked again: at `open` for a standby (a credential revoked or a permission or
      // target removed while it waited refuses it then), and after any change for an open
      // connection (the connector cuts one that would now be refused).
      const recheck = async () => {
        const now = await authenticate(ctx, req);
        if (!now.ability.can('connect', 'AccessTarget'))
          throw permissionDenied(now, 'connect', 'AccessTarget');
        const fresh = await service.lookup(now.orgId, req.params.target);
        // The caller reached this target before: a limit that no longer allows it is a 403
        // (reverify's "access to NAME revoked"), never a 404 that reads as "deleted".
        assertMayConnect(now, fresh, req.params.target, false);
        return {
          orgId: now.orgId,
          who: { ...whoOf(req), actor: auditActor(now) },
          target: fresh,
        };
      };
      if (req.query.open === 'deferred') {
        const caller = { orgId: actor.orgId, target };
        connector.standby(upgrade.accept, recheck, { caller }).catch((err: unknown) => {
          req.log.error({ err }, 'access standby failed');
        });
        return reply;
      }
      connector
        .connect(actor.orgId, whoOf(req), target, upgrade.accept, { recheck })
        .catch((err: unknown) => {
          if (refusalOf(err).status === 500) req.log.error({ err }, 'access connection failed');
          upgrade.refuse(err);
        });
      return reply;
    },
  );
}
