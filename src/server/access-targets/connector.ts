/**
 * Runs `gatepool connect` connections: one client stream (protocol/access-stream.ts) per local
 * connection, spliced to a tunnel stream opened through the target's gateway or pool.
 *
 * The tunnel stream is opened before the client's handshake completes, so a connection that
 * cannot be served is refused with an ordinary HTTP error naming what each member said, and
 * opens fail over between members (nothing reached the target yet). After the gateway's 200 the
 * connection is never re-run: bytes may have reached the target.
 */
import { randomUUID } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type { FastifyBaseLogger } from 'fastify';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import {
  OPEN_MESSAGE,
  OPENED_MESSAGE,
  spliceCounted,
  type WsStream,
} from '../../protocol/access-stream.js';
import type { AuditLog, AuditWho } from '../audit/service.js';
import { refOf } from '../consumers/attach.js';
import { NotFoundError, UnavailableError } from '../errors.js';
import {
  NoGatewayAvailableError,
  type GatewayRef,
  type Served,
  type Target,
} from '../pools/failover.js';
import type { PoolRuntime } from '../pools/runtime.js';
import type { AccessTargetListing } from './queries.js';
import { firstReply, Predial, type PredialEnd, type Predialed } from './predial.js';
import { postgresFirstPacket } from './replay-safe.js';
import { refusalOf } from './upgrade.js';
import { formatAuthority } from '../../protocol/tunnel.js';

const CONNECTIONS_METRIC = 'gatepool_access_connections_total';

/**
 * Counts connections recorded as lost after a crash (audit/lost-connections.ts) in the
 * connections counter an AccessMetrics made on `registry`.
 */
export function countLostConnections(registry: Registry, n: number): void {
  const counter = registry.getSingleMetric(CONNECTIONS_METRIC);
  if (counter instanceof Counter) counter.inc({ result: 'lost' }, n);
}

export class AccessMetrics {
  readonly open: Gauge;
  readonly connections: Counter<'result'>;
  readonly bytes: Counter<'direction'>;
  readonly setupSeconds: Histogram;
  readonly predials: Counter<'end'>;
  readonly predialsOpen: Gauge;

  constructor(registry: Registry) {
    const registers = [registry];
    this.open = new Gauge({
      name: 'gatepool_access_connections_open',
      help: 'Client connections to access targets open now',
      registers,
    });
    this.connections = new Counter({
      name: CONNECTIONS_METRIC,
      help:
        'Client connections to access targets by result (closed, broken, revoked, no_gateway, ' +
        'client_gone; lost: open when the platform stopped without closing them, such as a ' +
        'crash or kill, counted when the next server starts)',
      labelNames: ['result'],
      registers,
    });
    this.bytes = new Counter({
      name: 'gatepool_access_bytes_total',
      help: 'Bytes relayed between clients and access targets (to_target, from_target)',
      labelNames: ['direction'],
      registers,
    });
    this.setupSeconds = new Histogram({
      name: 'gatepool_access_connect_seconds',
      help: 'Time from a client stream request to its target connection being open',
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5],
      registers,
    });
    this.predials = new Counter({
      name: 'gatepool_access_predials_total',
      help:
        'Target connections opened ahead of a client (predial.ts), by how they ended: used ' +
        '(taken by a client); used_failed (of those used, ones whose member failed before the ' +
        "target's first reply: opened afresh); expired (replaced unused); lost (ended by the " +
        'target or member before use); unused (the standby ended, or its member was no longer trusted)',
      labelNames: ['end'],
      registers,
    });
    this.predialsOpen = new Gauge({
      name: 'gatepool_access_predials_open',
      help: 'Target connections open ahead of a client and not used yet (one idle backend each)',
      registers,
    });
  }
}

/**
 * Why a connection broke, in the words `gatepool connect` prints. The tunnel layer names the
 * gateway by id; the user knows it by name (QA issue 13), so the name replaces the id, or is
 * added when the tunnel's words do not name the gateway at all.
 */
export function brokenReason(
  target: string,
  served: { gatewayId: string; gateway: string },
  error: Error | undefined,
): string {
  const why = error?.message ?? 'the gateway stream ended abnormally';
  const gateway = `gateway "${served.gateway}"`;
  const named = why.includes(served.gatewayId)
    ? why.split(`gateway ${served.gatewayId}`).join(gateway).split(served.gatewayId).join(gateway)
    : `${why} (${gateway})`;
  return `connection to ${target} broken: ${named}`;
}

export interface ConnectorDeps {
  run: PoolRuntime['run'];
  audit: AuditLog;
  metrics: AccessMetrics;
  log: FastifyBaseLogger;
  /**
   * Subscribes to changes of credentials, permissions and the like (auth/credential-cache.ts
   * `onClear`): open connections are then checked again (see `reverify`).
   */
  onCredentialsChanged?: (listener: () => void) => void;
  /**
   * Opens `postgres` targets ahead of the client while a standby waits (predial.ts); absent:
   * never (GATEPOOL_ACCESS_PREDIAL=false).
   */
  predial?: {
    open(orgId: string, ref: GatewayRef, target: Target): Promise<Predialed | undefined>;
    /** Whether a request would trust the member now (healthy, neither quiet nor suspect). */
    trusts(orgId: string, ref: GatewayRef, gatewayId: string): boolean;
  };
}

/** An open connection, as `reverify` checks it. */
interface LiveConnection {
  target: AccessTargetListing;
  recheck: Recheck | undefined;
  /** Why it was cut by a revocation (its audit entry says so). */
  revoked?: string;
}

/** Changes that arrive this close together are checked once. */
const REVERIFY_DEBOUNCE_MS = 50;

/** Completes the client's handshake once the target is open; null when the client left. */
export type AcceptClient = () => Promise<WsStream | null>;

/** What a deferred open checks again when the client asks for the target (see `standby`). */
export type Recheck = () => Promise<{ orgId: string; who: AuditWho; target: AccessTargetListing }>;

/** How long a standby stream may wait for its `open` before the platform closes it. */
export const STANDBY_IDLE_MS = 5 * 60_000;
/**
 * How long a deferred open to a `postgres` target waits for the client's first packet (sent
 * right behind `open`) before it opens the target without it.
 */
const FIRST_PACKET_WAIT_MS = 5;
/**
 * How long a predialled target may take to answer the client's first packet before the
 * connection is opened afresh (the same failover budget as an open).
 */
const FIRST_REPLY_BUDGET_MS = 10_000;

/**
 * A `postgres` client's first packet, taken from `client` when it may travel with the CONNECT
 * (replay-safe.ts); anything else stays buffered and waits for the 200.
 */
async function replaySafeStart(
  client: WsStream,
  target: AccessTargetListing,
): Promise<Buffer | undefined> {
  if (target.protocol !== 'postgres') return undefined;
  const deadline = performance.now() + FIRST_PACKET_WAIT_MS;
  let need = 8;
  for (;;) {
    const left = deadline - performance.now();
    if (left <= 0 || !(await client.whenBuffered(need, left))) return undefined;
    // All that is buffered; what is not sent ahead goes back before anything else reads it.
    const head = client.read() as Buffer;
    const first = postgresFirstPacket(head);
    if (first.kind === 'safe') {
      if (head.length > first.length) client.unshift(head.subarray(first.length));
      return head.subarray(0, first.length);
    }
    client.unshift(head);
    if (first.kind === 'unsafe') return undefined;
    need = head.readUInt32BE(0);
  }
}

export class AccessConnector {
  private readonly live = new Map<WsStream, LiveConnection>();
  private readonly standbys = new Set<WsStream>();
  private reverifyTimer: NodeJS.Timeout | undefined;
  private reverifying: Promise<void> | undefined;

  constructor(private readonly deps: ConnectorDeps) {
    deps.onCredentialsChanged?.(() => this.scheduleReverify());
  }

  private scheduleReverify(): void {
    if (this.reverifyTimer || this.live.size === 0) return;
    this.reverifyTimer = setTimeout(() => {
      this.reverifyTimer = undefined;
      // One sweep at a time; a change during a sweep gets a sweep of its own after it.
      const previous = this.reverifying ?? Promise.resolve();
      this.reverifying = previous
        .then(() => this.reverify())
        .catch((err: unknown) => this.deps.log.error({ err }, 'checking open connections failed'));
    }, REVERIFY_DEBOUNCE_MS);
    this.reverifyTimer.unref();
  }

  /**
   * Revocation reaches open connections too: after a change, each connection's caller is
   * checked again as at its open (credential, `connect` permission, the target), and one that
   * would now be refused, or whose target now names another address, is cut, its client told
   * why. A check the database cannot answer now keeps the connection (an outage revokes
   * nothing). Connections sharing a credential cost one query: the first check fills the
   * credential cache for the rest.
   */
  async reverify(): Promise<void> {
    for (const [client, conn] of [...this.live]) {
      if (!conn.recheck || !this.live.has(client)) continue;
      try {
        const { target } = await conn.recheck();
        // Repointed: the connection still reaches the old address, which the target no longer
        // names (an admin moving it off a host means to stop traffic there).
        if (target.host !== conn.target.host || target.port !== conn.target.port) {
          conn.revoked = `access target ${target.name} now points at ${formatAuthority(target.host, target.port)}: connect again to reach it`;
          client.abort(conn.revoked);
        }
      } catch (err) {
        const { status, body } = refusalOf(err);
        if (status !== 401 && status !== 403 && status !== 404) continue;
        // The target is looked up by id: its 404 would name a UUID the user never saw.
        conn.revoked =
          status === 404
            ? `access target ${conn.target.name} was deleted`
            : `access to ${conn.target.name} revoked: ${body.error.message}`;
        client.abort(conn.revoked);
      }
    }
  }

  /**
   * A deferred open (`gatepool connect`'s standby, protocol/access-stream.ts): the handshake
   * completes now and the target is opened when the client sends `open`. What the set-up of a
   * connection costs then is the tunnel open alone: the TCP connection, the HTTP exchange,
   * authentication and the target's lookup were paid while nobody waited. For a `postgres`
   * target (`caller` given, predial on) the target itself is opened while the standby waits
   * (predial.ts), so that is paid too. The caller's credential, permission and target are
   * checked again at `open` (from memory, see auth/credential-cache.ts), so a standby never
   * outlives a revocation; a refusal is a `refused` message with the API's error body, never
   * bytes.
   */
  async standby(
    accept: AcceptClient,
    recheck: Recheck,
    opts: { idleMs?: number; caller?: { orgId: string; target: AccessTargetListing } } = {},
  ): Promise<void> {
    const client = await accept();
    if (!client) return;
    // A client that closes its standby ends it with an error; nobody else listens yet.
    client.on('error', () => undefined);
    this.standbys.add(client);
    const predial = this.predialFor(opts.caller);
    const asked = await new Promise<boolean>((resolve) => {
      const done = (open: boolean) => {
        clearTimeout(timer);
        client.off('control', onControl);
        client.off('close', onClose);
        resolve(open);
      };
      const onControl = (text: string) => text === OPEN_MESSAGE && done(true);
      const onClose = () => done(false);
      const timer = setTimeout(() => done(false), opts.idleMs ?? STANDBY_IDLE_MS);
      client.on('control', onControl);
      client.once('close', onClose);
    });
    this.standbys.delete(client);
    if (!asked) {
      predial?.close();
      client.closeUnused('standby unused');
      return;
    }
    try {
      const { orgId, who, target } = await recheck();
      const ahead = await replaySafeStart(client, target);
      const accept = async () => {
        if (!client.usable) return null;
        client.sendControl(OPENED_MESSAGE);
        return client;
      };
      const ref = refOf(target);
      // Only with a replay-safe first packet, to the address the predial was opened to, through
      // a member the reference still trusts; any other open goes the usual way.
      const same =
        opts.caller?.target.host === target.host && opts.caller.target.port === target.port;
      const pre =
        ahead && ref && same
          ? predial?.take((p) => this.deps.predial?.trusts(orgId, ref, p.gatewayId) === true)
          : undefined;
      predial?.close();
      if (pre && ahead && ref) {
        const started = performance.now();
        pre.stream.write(ahead);
        const replied = await firstReply(
          pre.stream,
          client,
          () => this.deps.predial?.trusts(orgId, ref, pre.gatewayId) === true,
          FIRST_REPLY_BUDGET_MS,
        );
        if (replied !== 'failed') {
          const member = { gatewayId: pre.gatewayId, gatewayName: pre.gatewayName };
          await this.serve(pre.stream, member, who, target, accept, started, {
            ahead,
            recheck,
          });
          return;
        }
        // Only the replay-safe packet can have reached the target: open afresh with it.
        pre.stream.destroy();
        this.deps.metrics.predials.inc({ end: 'used_failed' });
      }
      await this.connect(orgId, who, target, accept, { ahead, recheck });
    } catch (err) {
      const { status, body } = refusalOf(err);
      if (status === 500) this.deps.log.error({ err }, 'access connection failed');
      client.refuse(body.error.message, body);
    } finally {
      // A refusal at `open` (a revoked credential, a deleted target) leaves no predial behind.
      predial?.close();
    }
  }

  /** A predial for a standby of `caller`, when its target is a `postgres` one and predial is on. */
  private predialFor(caller?: { orgId: string; target: AccessTargetListing }): Predial | undefined {
    const dial = this.deps.predial;
    const ref = caller && refOf(caller.target);
    if (!dial || !caller || !ref || caller.target.protocol !== 'postgres') return undefined;
    const { orgId, target } = caller;
    return new Predial(
      {
        open: () => dial.open(orgId, ref, { host: target.host, port: target.port }),
        now: Date.now,
      },
      (end: PredialEnd) => {
        this.deps.metrics.predials.inc({ end });
        this.deps.metrics.predialsOpen.dec();
      },
      () => this.deps.metrics.predialsOpen.inc(),
    );
  }

  /**
   * Opens the target for `who` and relays until either side ends. Resolves once the connection
   * is over; rejects (before any handshake) when no gateway could open the target. `ahead`: the
   * client's first bytes, already taken from it, sent with the CONNECT (replay-safe.ts).
   * `recheck`: asks for the caller again after a change (`reverify`).
   */
  async connect(
    orgId: string,
    who: AuditWho,
    target: AccessTargetListing,
    accept: AcceptClient,
    opts: { ahead?: Buffer; recheck?: Recheck } = {},
  ): Promise<void> {
    const { ahead } = opts;
    const ref = refOf(target);
    // The schema lets a target exist without a path (for direct access, not offered yet).
    if (!ref) throw new NotFoundError(`A gateway or pool for access target "${target.name}"`);
    const started = performance.now();
    const { audit, log, metrics } = this.deps;
    let served: Served<void>;
    try {
      served = await this.deps.run(
        orgId,
        ref,
        { host: target.host, port: target.port },
        (tunnel, member) => this.serve(tunnel, member, who, target, accept, started, opts),
        { sendAhead: ahead },
      );
    } catch (err) {
      if (!(err instanceof NoGatewayAvailableError)) throw err;
      metrics.connections.inc({ result: 'no_gateway' });
      audit.recordSoon(
        who.actor,
        'access.connect-failed',
        { ...this.describe(target, who), reason: err.message, attempts: err.attempts },
        who,
      );
      throw new UnavailableError(
        `Cannot open access target "${target.name}" (${formatAuthority(target.host, target.port)}): ${err.message}.`,
        { attempts: err.attempts },
        'gateway_unavailable',
      );
    }
    if (served.attempts.length)
      log.info(
        { target: target.name, gateway: served.gatewayName, failovers: served.attempts.length },
        'access connection opened after failover',
      );
  }

  /** What every audit entry of a connection to `target` says. */
  private describe(target: AccessTargetListing, who: AuditWho) {
    return {
      targetId: target.id,
      target: target.name,
      address: formatAuthority(target.host, target.port),
      gatewayPoolId: target.gatewayPoolId,
      gatewayPool: target.gatewayPoolName,
      clientAddress: who.ip ?? null,
    };
  }

  /** A tunnel stream to the target is open through `member`: the client's turn, then the relay. */
  private async serve(
    tunnel: Duplex,
    member: { gatewayId: string; gatewayName: string },
    who: AuditWho,
    target: AccessTargetListing,
    accept: AcceptClient,
    started: number,
    opts: { ahead?: Buffer; recheck?: Recheck },
  ): Promise<void> {
    const { metrics, audit } = this.deps;
    const client = await accept();
    if (!client) {
      tunnel.destroy();
      metrics.connections.inc({ result: 'client_gone' });
      return;
    }
    metrics.setupSeconds.observe((performance.now() - started) / 1000);
    const served = { gatewayId: member.gatewayId, gateway: member.gatewayName };
    // Pairs the connect with its disconnect, also one written after a crash
    // (audit/lost-connections.ts, which reads serverId to tell a dead process's connections).
    const connection = { ...this.describe(target, who), connectionId: randomUUID() };
    // Off the connection's path: the client's first bytes must not wait for a write.
    audit.recordSoon(
      who.actor,
      'access.connect',
      { ...connection, ...served, serverId: audit.serverId },
      who,
    );
    await this.relay(
      client,
      tunnel,
      { target, recheck: opts.recheck },
      who,
      connection,
      served,
      started,
      opts.ahead,
    );
  }

  private async relay(
    client: WsStream,
    tunnel: Duplex,
    conn: LiveConnection,
    who: AuditWho,
    base: Record<string, unknown>,
    served: { gatewayId: string; gateway: string },
    started: number,
    ahead: Buffer | undefined,
  ): Promise<void> {
    const { metrics, audit } = this.deps;
    this.live.set(client, conn);
    metrics.open.inc();
    const result = await spliceCounted(client, tunnel, (error, from) => {
      // Tell the client why, so a broken connection is never mistaken for a finished one.
      if (from === tunnel) client.abort(brokenReason(conn.target.name, served, error));
    });
    this.live.delete(client);
    metrics.open.dec();
    const outcome = conn.revoked ? 'revoked' : result.clean ? 'closed' : 'broken';
    metrics.connections.inc({ result: outcome });
    const bytesToTarget = result.bytesFromA + (ahead?.length ?? 0);
    metrics.bytes.inc({ direction: 'to_target' }, bytesToTarget);
    metrics.bytes.inc({ direction: 'from_target' }, result.bytesFromB);
    const durationMs = Math.round(performance.now() - started);
    audit.recordSoon(
      who.actor,
      'access.disconnect',
      {
        ...base,
        ...served,
        result: outcome,
        ...(conn.revoked
          ? { error: conn.revoked }
          : result.error
            ? { error: result.error.message }
            : {}),
        bytesToTarget,
        bytesFromTarget: result.bytesFromB,
        durationMs,
      },
      who,
    );
  }

  /** Ends every open connection (platform shutdown): clients see an abnormal close, not a hang. */
  closeAll(reason = 'the platform is shutting down'): void {
    for (const c of this.live.keys()) c.destroy(new Error(reason));
    for (const s of this.standbys) s.closeUnused(reason);
  }
}
