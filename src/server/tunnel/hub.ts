/**
 * The platform's tunnel listener: accepts gateways' mTLS connections, turns each into a
 * GatewaySession (platform = HTTP/2 client, DESIGN §2) and is the single place the rest of the
 * platform opens streams through.
 *
 * Trust is checked in three layers:
 * 1. TLS: the client certificate must chain to one of the org CAs (unknown CA → TLS alert).
 *    The CA list grows at runtime (new orgs), so it is re-read as each connection arrives and the
 *    secure context swapped before that connection's handshake when the list changed.
 * 2. The certificate's org (URI SAN) must be the org of the CA that issued it, so one org's CA
 *    cannot mint gateways for another.
 * 3. `identify()` (the platform's records): unknown, deleted or re-enrolled gateways are refused
 *    with a `revoked` GOAWAY, on which the agent stops; a failing `identify()` (database down)
 *    answers `unavailable`, on which it retries.
 *
 * Before the TLS handshake a connection is unauthenticated and costs us a socket: each one gets
 * the handshake timeout from accept, and one source address may hold only a few at once, so a
 * client that opens connections and never speaks cannot exhaust the listener.
 */
import { EventEmitter } from 'node:events';
import http2 from 'node:http2';
import { X509Certificate } from 'node:crypto';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import tls, { type TLSSocket } from 'node:tls';
import { encodeGoaway, TUNNEL_ALPN, TUNNEL_TLS, type GoawayReason } from '../../protocol/tunnel.js';
import {
  parseGatewayCert,
  parseOrgCa,
  verifyIssuedBy,
  type GatewayCertInfo,
} from '../../protocol/identity.js';
import { StreamOpenError } from './errors.js';
import {
  GatewaySession,
  type GatewayLive,
  type OpenStreamOptions,
  type ProbeOutcome,
  type TunnelMetrics,
} from './session.js';

export type { GatewayLive, OpenStreamOptions, ProbeOutcome, TunnelMetrics } from './session.js';
export { StreamOpenError, type StreamOpenFailure } from './errors.js';

export interface GatewayRecordIdentity {
  orgId: string;
  gatewayId: string;
  name: string;
}

/** The subset of pino's logger the hub uses (pino and Fastify loggers fit). */
export interface HubLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export interface TunnelHubOptions {
  host?: string;
  /** 0 picks a free port (see listen()). */
  port: number;
  serverCertPem: string;
  serverKeyPem: string;
  /** Current org gateway CA certificates; called per incoming connection, so keep it cheap. */
  caPems: () => string[];
  /** Maps a verified certificate to a live gateway record, or null to refuse it. */
  identify: (info: GatewayCertInfo) => Promise<GatewayRecordIdentity | null>;
  keepaliveMs?: number;
  deadAfterMs?: number;
  /** Default budget for openStream when the caller gives none. */
  openTimeoutMs?: number;
  /** Budget from TCP accept to a finished TLS handshake (also bounds silent connections). */
  handshakeTimeoutMs?: number;
  /** Connections one source address may have before their TLS handshake finished. */
  maxHandshakesPerAddress?: number;
  helloTimeoutMs?: number;
  abortGraceMs?: number;
  log?: HubLogger;
  metrics?: TunnelMetrics;
}

export interface TunnelHubEvents {
  connected: [live: GatewayLive];
  disconnected: [gatewayId: string, orgId: string, reason: string];
  status: [live: GatewayLive];
  /** Silent past quietAfterMs (pools route around it) or heard from again; see liveness.ts. */
  quiet: [live: GatewayLive, quiet: boolean, silentMs: number];
}

interface OrgCa {
  orgId: string;
  cert: X509Certificate;
}

const silentLog: HubLogger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
};
/** Repeated identical TLS refusals (a deleted gateway retrying) are logged once per window. */
const REFUSAL_LOG_WINDOW_MS = 60_000;
/**
 * Generous for a fleet restarting behind one NAT address (a handshake takes milliseconds, and an
 * agent turned away retries with backoff), small next to the file descriptors a flood would take.
 */
const DEFAULT_MAX_HANDSHAKES_PER_ADDRESS = 64;

export class TunnelHub extends EventEmitter<TunnelHubEvents> {
  private server: tls.Server | undefined;
  private readonly sessions = new Map<string, GatewaySession>();
  /** Sessions past TLS but before their first status (or being refused). */
  private readonly pending = new Set<{
    gatewayId: string;
    close: (goaway: GoawayReason) => void;
  }>();
  private readonly seen = new Set<string>();
  /** Bumped by disconnect(); a handshake that straddles a disconnect is refused. */
  private readonly epochs = new Map<string, number>();
  private caKey: string | undefined;
  private orgCas: OrgCa[] = [];
  private readonly refusalsLogged = new Map<string, number>();
  /** Connections before their TLS handshake finished, by `address:port` (close() ends them). */
  private readonly handshaking = new Map<string, { raw: Socket; release: () => void }>();
  /** How many of those each source address holds. */
  private readonly handshakesPerAddress = new Map<string, number>();
  private readonly maxHandshakesPerAddress: number;
  private readonly log: HubLogger;
  readonly keepaliveMs: number;
  readonly deadAfterMs: number;
  private generation = 0;
  private readonly openTimeoutMs: number;

  constructor(private readonly options: TunnelHubOptions) {
    super();
    this.log = options.log ?? silentLog;
    this.keepaliveMs = options.keepaliveMs ?? 250;
    this.deadAfterMs = options.deadAfterMs ?? 1000;
    this.openTimeoutMs = options.openTimeoutMs ?? 10_000;
    this.maxHandshakesPerAddress =
      options.maxHandshakesPerAddress ?? DEFAULT_MAX_HANDSHAKES_PER_ADDRESS;
    if (this.deadAfterMs <= this.keepaliveMs) {
      throw new Error('deadAfterMs must be larger than keepaliveMs');
    }
  }

  listen(): Promise<{ port: number }> {
    if (this.server) throw new Error('tunnel hub already listening');
    const server = tls.createServer({
      ...this.secureContextOptions(),
      requestCert: true,
      rejectUnauthorized: true,
      ALPNProtocols: [TUNNEL_ALPN],
      handshakeTimeout: this.options.handshakeTimeoutMs ?? 10_000,
    });
    this.server = server;
    // Runs before the TLS server's own 'connection' listener creates the TLSSocket, so a CA
    // added since the last connection is trusted for this very handshake.
    server.prependListener('connection', (raw: Socket) => {
      if (!this.admit(raw)) return;
      this.refreshCas();
    });
    server.on('secureConnection', (socket: TLSSocket) => {
      this.handshaking.get(`${socket.remoteAddress}:${socket.remotePort}`)?.release();
      this.accept(socket).catch((error: unknown) => {
        const gatewayId = peerGatewayId(socket);
        if (isNetworkError(error))
          this.log.warn(
            { gatewayId, remoteAddress: socket.remoteAddress },
            `gateway tunnel setup failed: ${error.message}`,
          );
        else this.log.warn({ gatewayId, err: error }, 'gateway tunnel setup failed');
        socket.destroy();
      });
    });
    server.on('tlsClientError', (error: Error, socket: TLSSocket) => {
      this.logRefusal(socket.remoteAddress ?? '?', `TLS handshake failed: ${error.message}`);
      // With a listener here Node leaves the socket open (even after its handshake timeout):
      // without this, a connection that never sends a ClientHello stayed open for good.
      socket.destroy();
    });
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port, this.options.host ?? '0.0.0.0', () => {
        server.off('error', reject);
        const { port } = server.address() as AddressInfo;
        this.log.info({ port }, 'gateway tunnel listening');
        resolve({ port });
      });
    });
  }

  /** Closes the listener and every session (gateways see a 'shutdown' GOAWAY and reconnect). */
  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    const goaway: GoawayReason = { kind: 'shutdown', message: 'platform shutting down' };
    for (const entry of this.pending) entry.close(goaway);
    this.pending.clear();
    for (const session of [...this.sessions.values()])
      session.close('platform shutting down', goaway);
    for (const { raw } of [...this.handshaking.values()]) raw.destroy();
    if (!server) return;
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Live state of a connected gateway (the same object is updated in place). */
  /**
   * Bumped whenever a session is installed or removed, so a caller that keeps references to
   * live states (the pool service, on every request) knows when to look them up again.
   */
  get sessionsGeneration(): number {
    return this.generation;
  }

  live(gatewayId: string): GatewayLive | undefined {
    return this.sessions.get(gatewayId)?.live;
  }

  liveGateways(): GatewayLive[] {
    return [...this.sessions.values()].map((session) => session.live);
  }

  /**
   * Opens a CONNECT stream to `host:port` through the gateway. Resolves once the gateway
   * answered 200 (target socket connected); every rejection is a StreamOpenError and means
   * nothing reached the target.
   */
  async openStream(
    gatewayId: string,
    host: string,
    port: number,
    options: OpenStreamOptions = {},
  ): Promise<Duplex> {
    const session = this.sessions.get(gatewayId);
    if (!session || session.closed) {
      this.options.metrics?.onStreamOpen?.('not_connected', 0, gatewayId);
      throw new StreamOpenError(
        'not_connected',
        `gateway ${gatewayId} is not connected`,
        gatewayId,
      );
    }
    if (session.live.draining) {
      // The gateway would answer 503; saying so here saves the round trip.
      this.options.metrics?.onStreamOpen?.('draining', 0, gatewayId);
      throw new StreamOpenError('draining', `gateway ${gatewayId} is draining`, gatewayId);
    }
    return session.openStream(host, port, {
      ...options,
      timeoutMs: options.timeoutMs ?? this.openTimeoutMs,
    });
  }

  /** Drops a gateway's tunnel at once (delete, revoke, re-enroll). True when one was open. */
  disconnect(gatewayId: string, reason: string): boolean {
    this.epochs.set(gatewayId, (this.epochs.get(gatewayId) ?? 0) + 1);
    // Every caller ends the gateway's standing (delete, revoke, re-enroll): its agent must stop.
    const goaway: GoawayReason = { kind: 'revoked', message: reason };
    let found = false;
    for (const entry of this.pending) {
      if (entry.gatewayId === gatewayId) {
        entry.close(goaway);
        found = true;
      }
    }
    const session = this.sessions.get(gatewayId);
    if (session) {
      session.close(reason, goaway);
      found = true;
    }
    return found;
  }

  /**
   * Platform-initiated drain (or undrain). A drain takes effect locally at once, so openStream
   * stops using the gateway before its next status; an undrain once the gateway confirms it.
   * False when the gateway is not connected.
   */
  setDraining(gatewayId: string, draining: boolean): boolean {
    return this.sessions.get(gatewayId)?.requestDrain(draining) ?? false;
  }

  /** Targets (`host:port`) the gateway connect-tests every status interval (pool health checks). */
  setHealthCheckTargets(gatewayId: string, targets: string[]): boolean {
    return (
      this.sessions.get(gatewayId)?.send({ type: 'config', healthCheckTargets: targets }) ?? false
    );
  }

  /** One PING round trip through the tunnel, in ms. */
  async ping(gatewayId: string): Promise<number> {
    const session = this.sessions.get(gatewayId);
    if (!session)
      throw new StreamOpenError(
        'not_connected',
        `gateway ${gatewayId} is not connected`,
        gatewayId,
      );
    return session.ping();
  }

  /** Tunnel round trip plus a TCP connect test from the gateway (subject to its allowlist). */
  async probe(
    gatewayId: string,
    host: string,
    port: number,
    timeoutMs: number,
  ): Promise<ProbeOutcome> {
    const session = this.sessions.get(gatewayId);
    if (!session)
      return { ok: false, stage: 'not_connected', error: `gateway ${gatewayId} is not connected` };
    return session.probe(host, port, timeoutMs);
  }

  private secureContextOptions(): tls.SecureContextOptions {
    const pems = this.options.caPems();
    this.caKey = pems.join('\n');
    this.orgCas = parseOrgCas(pems, this.log);
    return {
      cert: this.options.serverCertPem,
      key: this.options.serverKeyPem,
      // Always an array: an empty list trusts nothing, whereas `undefined` would mean the public
      // root store.
      ca: [...pems],
      ...TUNNEL_TLS,
    };
  }

  private refreshCas(): void {
    const server = this.server;
    if (!server) return;
    let pems: string[];
    try {
      pems = this.options.caPems();
    } catch (error) {
      this.log.warn({ err: error }, 'reading org CAs failed; keeping the previous list');
      return;
    }
    if (pems.join('\n') === this.caKey) return;
    server.setSecureContext(this.secureContextOptions());
  }

  /**
   * Counts a new TCP connection against its address's handshake allowance, or closes it when the
   * address already holds its share. Released on the TLS handshake or on close.
   */
  private admit(raw: Socket): boolean {
    const address = raw.remoteAddress ?? '?';
    const held = this.handshakesPerAddress.get(address) ?? 0;
    if (held >= this.maxHandshakesPerAddress) {
      this.logRefusal(
        address,
        `more than ${this.maxHandshakesPerAddress} connections from this address without a ` +
          'finished TLS handshake; closing new ones',
      );
      raw.destroy();
      return false;
    }
    this.handshakesPerAddress.set(address, held + 1);
    const key = `${address}:${raw.remotePort}`;
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      if (this.handshaking.get(key)?.raw === raw) this.handshaking.delete(key);
      const left = (this.handshakesPerAddress.get(address) ?? 1) - 1;
      if (left > 0) this.handshakesPerAddress.set(address, left);
      else this.handshakesPerAddress.delete(address);
    };
    this.handshaking.set(key, { raw, release });
    raw.once('close', release);
    return true;
  }

  /** Connections currently before their TLS handshake (tests, diagnostics). */
  get handshakesInProgress(): number {
    return this.handshaking.size;
  }

  private logRefusal(remote: string, message: string): void {
    const key = `${remote} ${message}`;
    const now = Date.now();
    const last = this.refusalsLogged.get(key);
    if (last !== undefined && now - last < REFUSAL_LOG_WINDOW_MS) return;
    if (this.refusalsLogged.size > 10_000) this.refusalsLogged.clear();
    this.refusalsLogged.set(key, now);
    this.log.warn({ remoteAddress: remote }, `gateway refused: ${message}`);
  }

  /** Tells the gateway why (GOAWAY over a throwaway HTTP/2 session), then closes the socket. */
  private refuse(socket: TLSSocket, goaway: GoawayReason): void {
    this.logRefusal(socket.remoteAddress ?? '?', goaway.message);
    if (socket.destroyed) return;
    const h2 = http2.connect(`http://${TUNNEL_ALPN}.gateway`, { createConnection: () => socket });
    h2.on('error', () => undefined);
    const destroy = (): void => {
      h2.destroy();
      socket.destroy();
    };
    const timer = setTimeout(destroy, 1000);
    timer.unref();
    h2.once('connect', () => {
      try {
        h2.goaway(http2.constants.NGHTTP2_NO_ERROR, 0, encodeGoaway(goaway));
      } catch {
        destroy();
        return;
      }
      setTimeout(destroy, 50).unref();
    });
    h2.once('close', () => clearTimeout(timer));
  }

  private async accept(socket: TLSSocket): Promise<void> {
    socket.on('error', () => undefined);
    socket.setNoDelay(true);
    const peer = socket.getPeerCertificate(true);
    const info = socket.authorized ? parseGatewayCert(peer) : null;
    if (!info || !peer.raw) {
      this.refuse(socket, {
        kind: 'refused',
        message: 'the certificate carries no gateway identity',
      });
      return;
    }
    const leaf = new X509Certificate(peer.raw);
    const issuedByOwnOrg = this.orgCas.some(
      (ca) => ca.orgId === info.orgId && verifyIssuedBy(leaf, ca.cert),
    );
    if (!issuedByOwnOrg) {
      this.refuse(socket, {
        kind: 'refused',
        message: `the certificate claims org ${info.orgId} but was not issued by that org's CA`,
      });
      return;
    }

    const epoch = this.epochs.get(info.gatewayId) ?? 0;
    const entry = {
      gatewayId: info.gatewayId,
      close: (goaway: GoawayReason) => this.refuse(socket, goaway),
    };
    this.pending.add(entry);
    let record: GatewayRecordIdentity | null;
    try {
      record = await this.options.identify(info);
    } catch (error) {
      // Not an answer about the gateway: refusing it as revoked would stop a healthy agent
      // because our database blinked. Rate-limited like refusals: every agent retries.
      this.logRefusal(
        socket.remoteAddress ?? '?',
        `looking up gateway ${info.gatewayId} failed: ${(error as Error).message}`,
      );
      this.refuse(socket, {
        kind: 'unavailable',
        message: 'the platform cannot check gateways right now; try again shortly',
      });
      return;
    } finally {
      this.pending.delete(entry);
    }
    if (socket.destroyed) return;
    if (
      !record ||
      record.gatewayId !== info.gatewayId ||
      record.orgId !== info.orgId ||
      (this.epochs.get(info.gatewayId) ?? 0) !== epoch
    ) {
      this.refuse(socket, {
        kind: 'revoked',
        message: `gateway ${info.gatewayId} is unknown, deleted or its certificate was replaced`,
      });
      return;
    }

    const session = new GatewaySession(socket, record, {
      keepaliveMs: this.keepaliveMs,
      deadAfterMs: this.deadAfterMs,
      helloTimeoutMs: this.options.helloTimeoutMs ?? 5000,
      abortGraceMs: this.options.abortGraceMs ?? 5000,
      ...(this.options.metrics ? { metrics: this.options.metrics } : {}),
    });
    const pendingSession = {
      gatewayId: record.gatewayId,
      close: (goaway: GoawayReason) => session.close(goaway.message, goaway),
    };
    this.pending.add(pendingSession);
    try {
      await session.start();
    } catch (error) {
      // start() fails only with the reason the session closed (the agent went away, its hello
      // never came): a network event like any disconnect, so one line, not a stack.
      this.log.warn(
        { gatewayId: record.gatewayId, name: record.name, orgId: record.orgId },
        `gateway connected but its tunnel did not come up: ${errorMessage(error)}`,
      );
      return;
    } finally {
      this.pending.delete(pendingSession);
    }
    if (session.closed) return;
    if ((this.epochs.get(record.gatewayId) ?? 0) !== epoch) {
      session.close('disconnected during handshake', {
        kind: 'revoked',
        message: 'the gateway was disconnected by the platform',
      });
      return;
    }
    this.adopt(session);
  }

  private adopt(session: GatewaySession): void {
    const { gatewayId, orgId } = session.live;
    const previous = this.sessions.get(gatewayId);
    // Install the new session first: listeners of the old one's 'disconnected' then see the
    // gateway as still live and need not record a loss.
    this.sessions.set(gatewayId, session);
    this.generation += 1;
    session.on('status', (live) => this.emit('status', live));
    session.on('quiet', (quiet, silentMs) => {
      if (quiet) {
        this.options.metrics?.onQuiet?.(gatewayId);
        this.log.warn(
          { gatewayId, name: session.live.name, orgId, silentMs },
          'gateway tunnel quiet: pools send new streams to other members',
        );
      } else {
        this.log.info(
          { gatewayId, name: session.live.name, orgId, silentMs },
          'gateway tunnel heard from again',
        );
      }
      this.emit('quiet', session.live, quiet, silentMs);
    });
    session.once('closed', (reason) => {
      if (this.sessions.get(gatewayId) === session) {
        this.sessions.delete(gatewayId);
        this.generation += 1;
      }
      this.options.metrics?.onDisconnect?.(gatewayId, reason);
      this.log.info({ gatewayId, orgId, reason }, 'gateway tunnel closed');
      this.emit('disconnected', gatewayId, orgId, reason);
    });
    previous?.close('replaced by a newer connection from the same gateway', {
      kind: 'replaced',
      message: 'replaced by a newer connection from the same gateway',
    });
    const reconnect = this.seen.has(gatewayId);
    this.seen.add(gatewayId);
    this.options.metrics?.onConnect?.(reconnect, gatewayId);
    this.log.info(
      {
        gatewayId,
        orgId,
        remoteAddress: session.live.remoteAddress,
        version: session.live.version,
      },
      'gateway tunnel up',
    );
    this.emit('connected', session.live);
  }
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Errors a peer going away mid-handshake produces (resets, closed streams, TLS/HTTP/2 teardown):
 * expected on any network, so logged as one line. Anything else may be a bug and keeps its stack.
 */
const NETWORK_CODE =
  /^(ECONNRESET|EPIPE|ETIMEDOUT|ECONNABORTED|ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|ENETDOWN|ERR_HTTP2_|ERR_SSL_|ERR_TLS_|ERR_STREAM_|ERR_SOCKET_)/;
export function isNetworkError(error: unknown): error is Error {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && NETWORK_CODE.test(code);
}

/** The gateway id a connection's certificate claims, for a log line; undefined if unreadable. */
function peerGatewayId(socket: TLSSocket): string | undefined {
  try {
    return parseGatewayCert(socket.getPeerCertificate(true))?.gatewayId;
  } catch {
    return undefined;
  }
}

function parseOrgCas(pems: string[], log: HubLogger): OrgCa[] {
  const cas: OrgCa[] = [];
  for (const pem of pems) {
    try {
      const cert = new X509Certificate(pem);
      const orgId = parseOrgCa(cert);
      if (orgId) cas.push({ orgId, cert });
      else
        log.warn({ subject: cert.subject }, 'an org CA without a gatepool org identity is ignored');
    } catch (error) {
      log.warn({ err: error }, 'an org CA certificate could not be parsed');
    }
  }
  return cas;
}
