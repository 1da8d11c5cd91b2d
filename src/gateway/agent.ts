/**
 * The gateway agent: keeps one mTLS tunnel to the platform and serves it as an HTTP/2 server
 * (roles reverse on the dialed socket, DESIGN §2).
 *
 * Logging is per state change (connecting, up, down, refused, draining), never per stream: a
 * busy gateway would otherwise drown the one line an operator needs.
 */
import http2, {
  type IncomingHttpHeaders,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import net from 'node:net';
import tls, { type TLSSocket } from 'node:tls';
import {
  createLineDecoder,
  encodeLine,
  PlatformMessageSchema,
  type GatewayMessage,
  type HealthCheckResult,
  type PlatformMessage,
} from '../protocol/control.js';
import {
  CONTROL_PATH,
  decodeGoaway,
  encodeGoaway,
  GATEPOOL_VERSION,
  formatAuthority,
  H2_TUNING,
  parseAuthority,
  PROTOCOL_VERSION,
  STATUS_INTERVAL_MS,
  StreamStatus,
  TUNNEL_ALPN,
  type GoawayReason,
  type HostPort,
} from '../protocol/tunnel.js';
import type { Allowlist } from './allowlist.js';
import { Backoff } from './backoff.js';
import { ConnectStream, describeSocketError, refuseStream } from './connect-stream.js';
import type { GatewayState } from './state.js';

export interface AgentLog {
  info(message: string): void;
  warn(message: string): void;
}

export interface GatewayAgentOptions {
  state: GatewayState;
  allowlist: Allowlist;
  labels: Record<string, string>;
  log: AgentLog;
  /** First reconnect delay; doubles per failed attempt. */
  backoffBaseMs?: number;
  backoffCapMs?: number;
  /** A tunnel up this long resets the backoff; a shorter one counts as another failed attempt. */
  backoffGraceMs?: number;
  /**
   * The platform said this gateway no longer exists or this is not its current certificate.
   * The agent has stopped when this is called (after the one line saying so).
   */
  onRevoked?: (message: string) => void;
  /** The platform PINGs every 250 ms by default; this much inbound silence means it is gone. */
  silenceMs?: number;
  /** TCP/TLS handshake budget towards the platform. */
  handshakeTimeoutMs?: number;
  /** Budget for dialing a target before answering 502. */
  dialTimeoutMs?: number;
}

interface Tunnel {
  socket: TLSSocket;
  /** Our side of the TLS handshake completed. */
  secure: boolean;
  session?: ServerHttp2Session;
  /** The platform opened the control stream: it accepted us. */
  established: boolean;
  control?: ServerHttp2Stream;
  streams: Map<number, ConnectStream>;
  goaway?: GoawayReason;
  firstError?: Error;
  timers: NodeJS.Timeout[];
  closed: boolean;
}

/** TLS alerts the platform sends when it rejects our client certificate. */
const CERT_REFUSED_CODES = new Set([
  'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA',
  'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_REVOKED',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED',
  'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
  'ERR_SSL_TLSV1_ALERT_ACCESS_DENIED',
  'ERR_SSL_TLSV1_ALERT_DECRYPT_ERROR',
]);

/** Our own verification of the platform's certificate failed (wrong CA, wrong name). */
const SERVER_CERT_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'CERT_SIGNATURE_FAILURE',
]);

const REPLACED_BACKOFF_MS = 30_000;
/** Trust failures in a row before the agent suggests that it has to enroll again. */
const REENROLL_HINT_AFTER = 3;

function seconds(ms: number): string {
  return `${ms < 10_000 ? (ms / 1000).toFixed(1) : Math.round(ms / 1000)} s`;
}

type Outcome =
  | { kind: 'revoked'; message: string }
  | { kind: 'refused'; message: string }
  | { kind: 'replaced'; message: string }
  | { kind: 'untrusted'; message: string }
  | { kind: 'lost'; message: string };

export class GatewayAgent {
  private readonly server: http2.Http2Server;
  private readonly target: HostPort;
  private tunnel: Tunnel | undefined;
  private readonly backoff: Backoff;
  /** Consecutive failures of trust in either direction (see REENROLL_HINT_AFTER). */
  private trustFailures = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private localDrain = false;
  private platformDrain = false;
  /** ConnectStreams alive across all tunnels (a replaced tunnel's streams finish on their own). */
  private active = 0;
  private idleWaiters: Array<() => void> = [];
  private lastFailure = '';
  private failuresSinceUp = 0;
  private everUp = false;
  private healthCheckTargets: string[] = [];
  private healthChecks = new Map<string, HealthCheckResult>();
  private readonly silenceMs: number;
  private readonly handshakeTimeoutMs: number;
  private readonly dialTimeoutMs: number;

  constructor(private readonly options: GatewayAgentOptions) {
    const target = parseAuthority(options.state.tunnelAddress);
    if (!target) throw new Error(`invalid tunnel address "${options.state.tunnelAddress}"`);
    this.target = target;
    this.backoff = new Backoff({
      baseMs: options.backoffBaseMs ?? 100,
      capMs: options.backoffCapMs ?? 3000,
      graceMs: options.backoffGraceMs ?? 10_000,
    });
    this.silenceMs = options.silenceMs ?? 5000;
    this.handshakeTimeoutMs = options.handshakeTimeoutMs ?? 10_000;
    this.dialTimeoutMs = options.dialTimeoutMs ?? 10_000;
    this.server = http2.createServer({
      settings: {
        enablePush: false,
        initialWindowSize: H2_TUNING.streamWindow,
        maxConcurrentStreams: H2_TUNING.maxConcurrentStreams,
        maxFrameSize: H2_TUNING.maxFrameSize,
      },
      maxSessionMemory: H2_TUNING.maxSessionMemory,
      peerMaxConcurrentStreams: H2_TUNING.maxConcurrentStreams,
      // The peer is the authenticated platform; Node's defaults here guard against hostile
      // clients and would cut a busy tunnel (e.g. frames racing a stream we just reset).
      maxSessionInvalidFrames: 1_000_000,
      maxSessionRejectedStreams: 1_000_000,
    });
  }

  get draining(): boolean {
    return this.localDrain || this.platformDrain;
  }

  get activeStreams(): number {
    return this.active;
  }

  start(): void {
    const labels = Object.entries(this.options.labels).map(([key, value]) => `${key}=${value}`);
    this.options.log.info(
      `gateway "${this.options.state.name}" (${this.options.state.gatewayId}) connecting to ` +
        `tunnel ${this.options.state.tunnelAddress}; allowing ${this.options.allowlist.describe()}` +
        (labels.length ? `; labels ${labels.join(', ')}` : ''),
    );
    this.connect();
  }

  /**
   * Stops taking streams, waits for open ones up to `timeoutMs`, then closes the tunnel.
   * Resolves with the number of streams that had to be cut.
   */
  async drain(timeoutMs: number): Promise<number> {
    this.localDrain = true;
    this.stopReconnecting();
    this.sendStatus();
    if (this.active > 0) {
      this.options.log.info(
        `draining: refusing new streams, waiting up to ${seconds(timeoutMs)} for ` +
          `${this.active} open stream${this.active === 1 ? '' : 's'}`,
      );
    }
    const idle = await this.waitIdle(timeoutMs);
    let cut = 0;
    if (!idle) {
      cut = this.active;
      this.options.log.warn(
        `drain timeout: closing ${cut} stream${cut === 1 ? '' : 's'} still open`,
      );
      for (const stream of this.tunnel?.streams.values() ?? []) stream.kill('drain timeout');
    }
    await this.shutdown();
    return cut;
  }

  /** Immediate stop (tests, second signal): closes the tunnel and every stream. */
  stop(): Promise<void> {
    this.stopReconnecting();
    for (const stream of this.tunnel?.streams.values() ?? []) stream.kill('gateway stopping');
    return this.shutdown();
  }

  private stopReconnecting(): void {
    this.stopped = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
  }

  /** Sends GOAWAY (so the platform logs a deliberate close) and resolves once the socket closed. */
  private shutdown(): Promise<void> {
    const tunnel = this.tunnel;
    if (!tunnel || tunnel.closed) return Promise.resolve();
    return new Promise((resolve) => {
      tunnel.socket.once('close', () => resolve());
      try {
        tunnel.session?.goaway(
          http2.constants.NGHTTP2_NO_ERROR,
          0,
          encodeGoaway({ kind: 'shutdown', message: 'gateway shutting down' }),
        );
      } catch {
        // Session already gone; the socket close below still completes the shutdown.
      }
      // A short grace lets the GOAWAY leave before the socket does.
      setTimeout(() => this.closeTunnel(tunnel, 'gateway shutting down'), 50);
    });
  }

  private waitIdle(timeoutMs: number): Promise<boolean> {
    if (this.active === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.idleWaiters = this.idleWaiters.filter((waiter) => waiter !== onIdle);
        resolve(false);
      }, timeoutMs);
      const onIdle = (): void => {
        clearTimeout(timer);
        resolve(true);
      };
      this.idleWaiters.push(onIdle);
    });
  }

  private connect(): void {
    if (this.stopped) return;
    const { state } = this.options;
    const socket = tls.connect({
      host: this.target.host,
      port: this.target.port,
      key: state.keyPem,
      cert: state.certificatePem,
      ca: [state.serverCaCertificatePem],
      ALPNProtocols: [TUNNEL_ALPN],
      minVersion: 'TLSv1.3',
    });
    const tunnel: Tunnel = {
      socket,
      secure: false,
      established: false,
      streams: new Map(),
      timers: [],
      closed: false,
    };
    this.tunnel = tunnel;
    socket.setNoDelay(true);
    const handshakeTimer = setTimeout(() => {
      socket.destroy(
        new Error(`TLS handshake did not finish within ${this.handshakeTimeoutMs} ms`),
      );
    }, this.handshakeTimeoutMs);
    tunnel.timers.push(handshakeTimer);
    socket.on('error', (error: Error) => {
      tunnel.firstError ??= error;
    });
    socket.on('close', () => this.onTunnelClosed(tunnel));
    socket.once('secureConnect', () => {
      tunnel.secure = true;
      clearTimeout(handshakeTimer);
      this.onSecure(tunnel);
    });
  }

  private onSecure(tunnel: Tunnel): void {
    const { socket } = tunnel;
    this.server.once('session', (session: ServerHttp2Session) => {
      tunnel.session = session;
      session.on('error', (error: Error) => {
        tunnel.firstError ??= error;
      });
      session.on('goaway', (_code: number, _lastStreamId: number, data?: Buffer) => {
        tunnel.goaway ??= decodeGoaway(data) ?? undefined;
      });
      // A server session adopted from an existing socket is set up synchronously, so its
      // 'connect' has already fired by now: enlarge the connection window directly.
      try {
        session.setLocalWindowSize(H2_TUNING.sessionWindow);
      } catch {
        session.once('connect', () => session.setLocalWindowSize(H2_TUNING.sessionWindow));
      }
      session.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) =>
        this.onStream(tunnel, stream, headers),
      );
      session.on('close', () => this.closeTunnel(tunnel, 'session closed'));
    });
    // Node's HTTP/2 server adopts an already-connected socket this way (DESIGN §2).
    this.server.emit('connection', socket);
    this.watchSilence(tunnel);
  }

  /** The platform PINGs us; prolonged silence means it (or the path) died without a FIN. */
  private watchSilence(tunnel: Tunnel): void {
    let lastBytes = tunnel.socket.bytesRead;
    let lastChange = Date.now();
    const timer = setInterval(() => {
      const now = Date.now();
      const bytes = tunnel.socket.bytesRead;
      if (bytes !== lastBytes) {
        lastBytes = bytes;
        lastChange = now;
        return;
      }
      const silent = now - lastChange;
      if (silent >= this.silenceMs) {
        tunnel.firstError ??= new Error(
          `no data from the platform for ${Math.round(silent / 1000)} s`,
        );
        tunnel.socket.destroy();
      } else if (silent >= 1000 && tunnel.session && !tunnel.session.destroyed) {
        // Ask for an answer ourselves in case the platform's keepalive is slower than ours.
        tunnel.session.ping(() => undefined);
      }
    }, 500);
    tunnel.timers.push(timer);
  }

  private onStream(tunnel: Tunnel, stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    const method = headers[':method'];
    if (method === 'CONNECT') {
      this.onConnectStream(tunnel, stream, headers[':authority']);
    } else if (method === 'POST' && headers[':path'] === CONTROL_PATH) {
      this.onControlStream(tunnel, stream);
    } else {
      stream.on('error', () => undefined);
      refuseStream(stream, 404, 'unknown tunnel request');
    }
  }

  private onConnectStream(
    tunnel: Tunnel,
    stream: ServerHttp2Stream,
    authority: string | undefined,
  ): void {
    const target = parseAuthority(authority);
    if (!target) {
      stream.on('error', () => undefined);
      refuseStream(stream, StreamStatus.BAD_REQUEST, `invalid target "${authority ?? ''}"`);
      return;
    }
    if (this.draining) {
      stream.on('error', () => undefined);
      refuseStream(stream, StreamStatus.DRAINING, 'the gateway is draining');
      return;
    }
    if (!this.options.allowlist.allows(target.host, target.port)) {
      stream.on('error', () => undefined);
      refuseStream(
        stream,
        StreamStatus.REFUSED,
        `${authority} is not allowed by this gateway's --allow rules`,
      );
      return;
    }
    const id = stream.id;
    this.active += 1;
    const connect = new ConnectStream(stream, target, this.dialTimeoutMs, () => {
      if (id !== undefined) tunnel.streams.delete(id);
      this.active -= 1;
      if (this.active === 0) {
        const waiters = this.idleWaiters;
        this.idleWaiters = [];
        waiters.forEach((waiter) => waiter());
      }
    });
    if (id !== undefined) tunnel.streams.set(id, connect);
  }

  private onControlStream(tunnel: Tunnel, stream: ServerHttp2Stream): void {
    stream.on('error', () => undefined);
    if (tunnel.control && !tunnel.control.destroyed) {
      refuseStream(stream, 409, 'control stream already open');
      return;
    }
    tunnel.control = stream;
    stream.respond({ ':status': 200, 'content-type': 'application/x-ndjson' });
    const decode = createLineDecoder(
      (value) => this.onPlatformMessage(tunnel, value),
      () => undefined,
    );
    stream.on('data', (chunk: Buffer) => decode(chunk));
    stream.on('close', () => {
      // Without a control stream the platform cannot see us as healthy; start over.
      if (!tunnel.closed) tunnel.socket.destroy();
    });
    this.sendStatus();
    tunnel.timers.push(setInterval(() => this.tick(), STATUS_INTERVAL_MS));
    if (!tunnel.established) {
      tunnel.established = true;
      this.onUp();
    }
  }

  private onUp(): void {
    const reconnected = this.everUp;
    this.everUp = true;
    this.backoff.up();
    this.lastFailure = '';
    this.failuresSinceUp = 0;
    this.trustFailures = 0;
    this.options.log.info(
      `${reconnected ? 'reconnected' : 'connected'}: tunnel up to ${this.options.state.tunnelAddress}`,
    );
  }

  private onPlatformMessage(tunnel: Tunnel, value: unknown): void {
    const parsed = PlatformMessageSchema.safeParse(value);
    // Unknown types come from a newer platform; ignoring them keeps upgrades independent.
    if (!parsed.success) return;
    const message: PlatformMessage = parsed.data;
    switch (message.type) {
      case 'drain':
        if (message.draining !== this.platformDrain) {
          this.platformDrain = message.draining;
          this.options.log.info(
            message.draining
              ? 'the platform asked this gateway to drain: refusing new streams'
              : 'the platform lifted the drain: taking new streams',
          );
          this.sendStatus();
        }
        break;
      case 'cancel':
        tunnel.streams.get(message.streamId)?.abort('cancelled by the platform');
        break;
      case 'probe':
        void this.probe(message.host, message.port, message.timeoutMs).then((result) =>
          this.send({
            type: 'probe-result',
            id: message.id,
            ok: result.ok,
            ...(result.connectMs !== undefined ? { connectMs: result.connectMs } : {}),
            ...(result.error !== undefined ? { error: result.error } : {}),
          }),
        );
        break;
      case 'config':
        this.healthCheckTargets = message.healthCheckTargets;
        for (const key of this.healthChecks.keys()) {
          if (!this.healthCheckTargets.includes(key)) this.healthChecks.delete(key);
        }
        break;
    }
  }

  /** TCP connect test, subject to the allowlist like any stream. */
  private probe(
    host: string,
    port: number,
    timeoutMs: number,
  ): Promise<{ ok: boolean; connectMs?: number; error?: string }> {
    if (!this.options.allowlist.allows(host, port)) {
      return Promise.resolve({
        ok: false,
        error: `${formatAuthority(host, port)} is not allowed by this gateway's --allow rules`,
      });
    }
    const started = performance.now();
    return new Promise((resolve) => {
      const socket = net.connect({ host, port });
      socket.setTimeout(timeoutMs, () =>
        socket.destroy(new Error(`connect timed out after ${timeoutMs} ms`)),
      );
      socket.once('connect', () => {
        resolve({ ok: true, connectMs: performance.now() - started });
        socket.destroy();
      });
      socket.once('error', (error: Error) =>
        resolve({ ok: false, error: describeSocketError(error, { host, port }) }),
      );
    });
  }

  private tick(): void {
    this.sendStatus();
    for (const target of this.healthCheckTargets) {
      const parsed = parseAuthority(target);
      if (!parsed) continue;
      void this.probe(parsed.host, parsed.port, STATUS_INTERVAL_MS).then((result) => {
        if (!this.healthCheckTargets.includes(target)) return;
        this.healthChecks.set(target, { target, ...result, checkedAt: Date.now() });
      });
    }
  }

  private sendStatus(): void {
    this.send({
      type: 'status',
      version: GATEPOOL_VERSION,
      protocol: PROTOCOL_VERSION,
      activeStreams: this.active,
      labels: this.options.labels,
      draining: this.draining,
      ...(this.healthChecks.size ? { healthChecks: [...this.healthChecks.values()] } : {}),
    });
  }

  private send(message: GatewayMessage): void {
    const control = this.tunnel?.control;
    if (!control || control.destroyed || control.writableEnded) return;
    control.write(encodeLine(message));
  }

  private closeTunnel(tunnel: Tunnel, reason: string): void {
    if (tunnel.closed) return;
    tunnel.firstError ??= new Error(reason);
    if (tunnel.session && !tunnel.session.destroyed) tunnel.session.destroy();
    tunnel.socket.destroy();
  }

  private onTunnelClosed(tunnel: Tunnel): void {
    if (tunnel.closed) return;
    tunnel.closed = true;
    tunnel.timers.forEach((timer) => clearTimeout(timer));
    for (const stream of tunnel.streams.values()) stream.kill('tunnel closed');
    if (tunnel.session && !tunnel.session.destroyed) tunnel.session.destroy();
    if (this.tunnel !== tunnel || this.stopped) return;
    const outcome = this.classify(tunnel);
    if (outcome.kind === 'revoked') {
      this.onRevoked(outcome.message);
      return;
    }
    const wasUp = tunnel.established;
    // A live tunnel is only replaced when another process presents this gateway's identity;
    // backing off long keeps two copies of one state dir from evicting each other in a loop.
    const delay = outcome.kind === 'replaced' ? REPLACED_BACKOFF_MS : this.backoff.next();
    const retry = `reconnecting in ${(delay / 1000).toFixed(1)} s`;
    if (outcome.kind === 'replaced') {
      this.options.log.warn(
        `another agent connected with this gateway's identity and replaced this tunnel (is the ` +
          `state directory in use twice?); ${retry}`,
      );
      this.lastFailure = outcome.message;
    } else if (outcome.kind === 'refused') {
      this.logFailure(
        `the platform refused this gateway's certificate (${outcome.message}); ${retry}`,
        outcome.message,
      );
      this.onTrustFailure();
    } else if (outcome.kind === 'untrusted') {
      this.logFailure(
        `the tunnel server's certificate is not trusted (${outcome.message}); ${retry}`,
        outcome.message,
      );
      this.onTrustFailure();
    } else if (wasUp) {
      this.options.log.warn(`tunnel down: ${outcome.message}; ${retry}`);
      this.lastFailure = outcome.message;
    } else {
      this.logFailure(`cannot connect: ${outcome.message}; ${retry}`, outcome.message);
    }
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.connect();
    }, delay);
  }

  /** Repeating the same failure every few seconds adds nothing; say it again only now and then. */
  private logFailure(line: string, key: string): void {
    this.failuresSinceUp += 1;
    if (key !== this.lastFailure || this.failuresSinceUp % 20 === 0) {
      const suffix = this.failuresSinceUp > 1 ? ` (attempt ${this.failuresSinceUp})` : '';
      this.options.log.warn(`${line}${suffix}`);
    }
    this.lastFailure = key;
  }

  /**
   * A platform reinstalled or restored from another database has new CAs: it neither trusts our
   * certificate nor presents one we trust, and only a new enrollment fixes that. It may also be a
   * platform mid-migration, so the agent says so and keeps trying.
   */
  private onTrustFailure(): void {
    this.trustFailures += 1;
    if (this.trustFailures === REENROLL_HINT_AFTER) {
      this.options.log.warn(
        `the platform and this gateway have not trusted each other for ${this.trustFailures} ` +
          'attempts: if the platform was reinstalled or its database replaced, this gateway ' +
          'probably needs to enroll again (new token, fresh --state-dir). Still retrying.',
      );
    }
  }

  /** Final: stop, and say in one line why and how to come back. */
  private onRevoked(message: string): void {
    const { name, gatewayId } = this.options.state;
    this.stopReconnecting();
    this.options.log.warn(
      `gateway "${name}" (${gatewayId}) was deleted or revoked on the platform (${message}); ` +
        'stopping. To connect this host again, enroll it with a new token and a fresh --state-dir.',
    );
    this.options.onRevoked?.(message);
  }

  private classify(tunnel: Tunnel): Outcome {
    if (tunnel.goaway?.kind === 'revoked')
      return { kind: 'revoked', message: tunnel.goaway.message };
    if (tunnel.goaway?.kind === 'refused')
      return { kind: 'refused', message: tunnel.goaway.message };
    if (tunnel.goaway?.kind === 'replaced')
      return { kind: 'replaced', message: tunnel.goaway.message };
    if (tunnel.goaway)
      return { kind: 'lost', message: `closed by the platform: ${tunnel.goaway.message}` };
    const error = tunnel.firstError;
    const code = (error as NodeJS.ErrnoException | undefined)?.code ?? '';
    if (CERT_REFUSED_CODES.has(code))
      return { kind: 'refused', message: `TLS alert: ${error?.message}` };
    if (SERVER_CERT_CODES.has(code)) return { kind: 'untrusted', message: error?.message ?? code };
    // Node's TLS server checks client certificates after the handshake and just closes the
    // socket (no alert) when the chain is unknown. A platform that accepted us always speaks
    // first (HTTP/2 SETTINGS), so a close before any byte is that refusal.
    if (tunnel.secure && !tunnel.established && tunnel.socket.bytesRead === 0) {
      return {
        kind: 'refused',
        message:
          'closed right after the TLS handshake: the certificate is not from an org CA it knows',
      };
    }
    if (error) return { kind: 'lost', message: error.message };
    return { kind: 'lost', message: 'connection closed by the platform' };
  }
}
