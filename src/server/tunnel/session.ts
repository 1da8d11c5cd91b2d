/**
 * One gateway's tunnel on the platform: the HTTP/2 client session over the gateway's TLS socket,
 * its keepalive, its control stream and its live state.
 *
 * Liveness counts any received byte as proof of life (DESIGN §2 trap 4: a PING ACK can queue
 * behind DATA under load). The HTTP/2 session reads the TLS socket natively, so no JS 'data'
 * events fire; the TLS socket's `bytesRead` counter still advances and is sampled every
 * `checkMs`, together with PING ACKs and control messages.
 */
import { EventEmitter } from 'node:events';
import http2, { type ClientHttp2Session, type ClientHttp2Stream } from 'node:http2';
import { randomUUID } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import {
  createLineDecoder,
  encodeLine,
  GatewayMessageSchema,
  type GatewayStatus,
  type HealthCheckResult,
  type PlatformMessage,
  type ProbeResult,
} from '../../protocol/control.js';
import {
  CONTROL_PATH,
  decodeGoaway,
  encodeGoaway,
  formatAuthority,
  H2_TUNING,
  REASON_HEADER,
  StreamStatus,
  TUNNEL_ALPN,
  type GoawayReason,
} from '../../protocol/tunnel.js';
import { StreamOpenError, StreamQuietError, type StreamOpenFailure } from './errors.js';
import { creditStall, quietFor } from './liveness.js';
import { TunnelStream } from './tunnel-stream.js';

export interface GatewayIdentity {
  orgId: string;
  gatewayId: string;
}

export interface GatewayLive extends GatewayIdentity {
  name: string;
  connectedSince: Date;
  /**
   * Epoch ms of the last byte received from the gateway; moved forward over stalls of this
   * process (liveness.ts creditStall), which are not the gateway's silence.
   */
  lastFrameAt: number;
  /** Latest PING round trip; null until the first ACK. */
  rttMs: number | null;
  /** Streams the gateway reported at its last status plus streams opened here since. */
  activeStreams: number;
  version: string | null;
  labels: Record<string, string>;
  draining: boolean;
  healthChecks: HealthCheckResult[];
  remoteAddress: string | null;
}

export type StreamOpenResult = 'ok' | StreamOpenFailure;

/**
 * Hooks the hub calls so the platform can feed Prometheus (or anything else) without this module
 * depending on a metrics library. All optional; called synchronously, so keep them cheap.
 */
export interface TunnelMetrics {
  onStreamOpen?(result: StreamOpenResult, ms: number, gatewayId: string): void;
  /** Tunnel bytes (TLS payload, including HTTP/2 framing), sampled every few tens of ms. */
  onBytes?(direction: 'in' | 'out', bytes: number, gatewayId: string): void;
  /** `reconnect`: this gateway had a session on this hub before. */
  onConnect?(reconnect: boolean, gatewayId: string): void;
  onDisconnect?(gatewayId: string, reason: string): void;
  /** The tunnel went quiet (liveness.ts): pools route around it until it is heard again. */
  onQuiet?(gatewayId: string): void;
}

export interface SessionOptions {
  keepaliveMs: number;
  deadAfterMs: number;
  /** How long the first status may take after the TLS handshake. */
  helloTimeoutMs: number;
  /** How long a cancelled stream may take to close before falling back to RST_STREAM. */
  abortGraceMs: number;
  metrics?: TunnelMetrics;
}

export interface OpenStreamOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
  /**
   * Give up (reason `quiet`) if the tunnel goes quiet before the gateway answers. For callers
   * with somewhere else to go, a pool: a frozen member would otherwise hold the operation until
   * the tunnel is declared dead, twice as long.
   */
  abandonWhenQuiet?: boolean;
  /**
   * After the 200, destroy the stream with a StreamQuietError if the tunnel goes quiet while it
   * is open. Only for operations the caller will repeat elsewhere (a pool running an idempotent
   * operation): anything else keeps waiting until the tunnel is heard again or declared dead.
   */
  cutWhenQuiet?: boolean;
  /** Bytes to send right behind the CONNECT, before the 200 (see FailoverOptions.sendAhead). */
  sendAhead?: Buffer;
}

export type ProbeOutcome =
  | { ok: true; rttMs: number; tunnelRttMs: number; connectMs?: number }
  | { ok: false; stage: 'not_connected' | 'tunnel' | 'target'; error: string };

interface SessionEvents {
  status: [GatewayLive];
  closed: [string];
  /** The tunnel went quiet (true, with the silence so far) or was heard from again (false). */
  quiet: [boolean, number];
}

const MAX_OUTSTANDING_PINGS = 3;
/** Time for a GOAWAY frame to leave before the socket is destroyed. */
const GOAWAY_FLUSH_MS = 50;

export class GatewaySession extends EventEmitter<SessionEvents> {
  readonly live: GatewayLive;
  private readonly h2: ClientHttp2Session;
  private control: ClientHttp2Stream | undefined;
  private readonly checkTimer: NodeJS.Timeout;
  private lastBytesRead = 0;
  private lastBytesWritten = 0;
  private lastPingAt = 0;
  private outstandingPings = 0;
  private reportedActive = 0;
  private openedSinceReport = 0;
  /** Open streams, failed explicitly when the tunnel dies so none ends as if complete. */
  private readonly openStreams = new Set<TunnelStream>();
  private closeReason: string | null = null;
  private quiet = false;
  /** Opens waiting for an answer that give up when the tunnel goes quiet. */
  private readonly quietWatchers = new Set<() => void>();
  private lastCheckAt = Date.now();
  private readonly checkMs: number;
  private drainRequested = false;
  private readonly pendingProbes = new Map<string, (result: ProbeResult) => void>();
  private helloResolve: (() => void) | undefined;

  constructor(
    private readonly socket: TLSSocket,
    identity: GatewayIdentity & { name: string },
    private readonly options: SessionOptions,
  ) {
    super();
    const now = Date.now();
    this.live = {
      ...identity,
      connectedSince: new Date(now),
      lastFrameAt: now,
      rttMs: null,
      activeStreams: 0,
      version: null,
      labels: {},
      draining: false,
      healthChecks: [],
      remoteAddress: socket.remoteAddress ?? null,
    };
    this.lastBytesRead = socket.bytesRead;
    this.lastBytesWritten = socket.bytesWritten;
    this.h2 = http2.connect(`http://${TUNNEL_ALPN}.gateway`, {
      createConnection: () => socket,
      settings: {
        enablePush: false,
        initialWindowSize: H2_TUNING.streamWindow,
        maxConcurrentStreams: H2_TUNING.maxConcurrentStreams,
        maxFrameSize: H2_TUNING.maxFrameSize,
      },
      peerMaxConcurrentStreams: H2_TUNING.maxConcurrentStreams,
      maxSessionMemory: H2_TUNING.maxSessionMemory,
      maxOutstandingPings: MAX_OUTSTANDING_PINGS + 1,
    });
    this.h2.on('connect', () => this.h2.setLocalWindowSize(H2_TUNING.sessionWindow));
    this.h2.on('error', (error) => this.close(`tunnel error: ${error.message}`));
    this.h2.on('goaway', (code: number, _lastStreamId: number, data?: Buffer) => {
      const reason = decodeGoaway(data);
      this.close(
        reason?.kind === 'shutdown'
          ? 'gateway shut down'
          : `gateway sent GOAWAY (code ${code}${reason ? `: ${reason.message}` : ''})`,
      );
    });
    this.h2.on('close', () => this.close('tunnel closed'));
    socket.on('close', () => this.close('socket closed'));
    this.checkMs = Math.min(50, options.keepaliveMs);
    this.checkTimer = setInterval(() => this.check(), this.checkMs);
    this.checkTimer.unref();
  }

  get closed(): boolean {
    return this.closeReason !== null;
  }

  /** Opens the control stream; resolves on the gateway's first status. */
  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.close('no status from the gateway in time');
      }, this.options.helloTimeoutMs);
      const onClosed = (reason: string): void => {
        clearTimeout(timer);
        reject(new Error(reason));
      };
      this.once('closed', onClosed);
      this.helloResolve = () => {
        clearTimeout(timer);
        this.off('closed', onClosed);
        resolve();
      };
      this.openControl();
    });
  }

  private openControl(): void {
    const control = this.h2.request(
      { ':method': 'POST', ':path': CONTROL_PATH, 'content-type': 'application/x-ndjson' },
      { endStream: false },
    );
    this.control = control;
    const decode = createLineDecoder(
      (value) => this.onMessage(value),
      (error) => this.close(`bad control message: ${error.message}`),
    );
    control.on('response', (headers) => {
      if (headers[':status'] !== 200) this.close(`control stream refused (${headers[':status']})`);
    });
    control.on('data', (chunk: Buffer) => decode(chunk));
    control.on('error', () => undefined);
    control.on('close', () => this.close('control stream closed'));
  }

  private onMessage(value: unknown): void {
    this.live.lastFrameAt = Date.now();
    const parsed = GatewayMessageSchema.safeParse(value);
    // Unknown message types come from newer gateways; ignoring them keeps upgrades independent.
    if (!parsed.success) return;
    const message = parsed.data;
    if (message.type === 'status') {
      this.applyStatus(message);
    } else {
      this.pendingProbes.get(message.id)?.(message);
    }
  }

  private applyStatus(status: GatewayStatus): void {
    this.reportedActive = status.activeStreams;
    this.openedSinceReport = 0;
    Object.assign(this.live, {
      activeStreams: status.activeStreams,
      version: status.version,
      labels: status.labels,
      // A drain the platform asked for holds even if this status left before the gateway saw it.
      draining: status.draining || this.drainRequested,
      healthChecks: status.healthChecks ?? [],
    });
    if (this.helloResolve) {
      const resolve = this.helloResolve;
      this.helloResolve = undefined;
      resolve();
      return;
    }
    this.emit('status', this.live);
  }

  /** Reports tunnel bytes since the last sample; true when something was received. */
  private sampleBytes(): boolean {
    const { metrics } = this.options;
    const read = this.socket.bytesRead;
    const written = this.socket.bytesWritten;
    const received = read !== this.lastBytesRead;
    if (metrics?.onBytes) {
      if (received) metrics.onBytes('in', read - this.lastBytesRead, this.live.gatewayId);
      if (written > this.lastBytesWritten) {
        metrics.onBytes('out', written - this.lastBytesWritten, this.live.gatewayId);
      }
    }
    this.lastBytesRead = read;
    this.lastBytesWritten = written;
    return received;
  }

  private check(): void {
    if (this.closed) return;
    const now = Date.now();
    this.live.lastFrameAt = creditStall(this.live.lastFrameAt, this.lastCheckAt, now, this.checkMs);
    this.lastCheckAt = now;
    if (this.sampleBytes()) this.live.lastFrameAt = Math.max(this.live.lastFrameAt, now);
    if (now - this.live.lastFrameAt >= this.options.deadAfterMs) {
      this.close(`no frame for ${now - this.live.lastFrameAt} ms`);
      return;
    }
    const silent = quietFor(this.live, now, this.options.keepaliveMs, this.options.deadAfterMs);
    if ((silent !== null) !== this.quiet) {
      this.quiet = silent !== null;
      if (this.quiet) for (const abandon of [...this.quietWatchers]) abandon();
      this.emit('quiet', this.quiet, now - this.live.lastFrameAt);
    }
    if (
      now - this.lastPingAt >= this.options.keepaliveMs &&
      this.outstandingPings < MAX_OUTSTANDING_PINGS
    ) {
      this.lastPingAt = now;
      this.ping().catch(() => undefined);
    }
  }

  /** One PING round trip; also refreshes rttMs and lastFrameAt. */
  ping(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.outstandingPings += 1;
      const sent = this.h2.ping((error, duration) => {
        this.outstandingPings -= 1;
        if (error) {
          reject(error);
          return;
        }
        this.live.lastFrameAt = Math.max(this.live.lastFrameAt, Date.now());
        this.live.rttMs = duration;
        resolve(duration);
      });
      if (!sent) {
        this.outstandingPings -= 1;
        reject(new Error('too many outstanding pings'));
      }
    });
  }

  /**
   * Platform-initiated drain. Draining takes effect here at once; undraining waits for the
   * gateway's next status (sent as soon as it applied it), so a status already in flight cannot
   * re-open the gateway too early or flap it.
   */
  requestDrain(draining: boolean): boolean {
    if (!this.send({ type: 'drain', draining })) return false;
    this.drainRequested = draining;
    if (draining && !this.live.draining) {
      this.live.draining = true;
      this.emit('status', this.live);
    }
    return true;
  }

  send(message: PlatformMessage): boolean {
    const control = this.control;
    if (!control || control.destroyed || this.closed) return false;
    control.write(encodeLine(message));
    return true;
  }

  openStream(
    host: string,
    port: number,
    options: OpenStreamOptions & { timeoutMs: number },
  ): Promise<TunnelStream> {
    const started = performance.now();
    const report = this.options.metrics?.onStreamOpen;
    const promise = this.openStreamInner(host, port, options);
    if (report) {
      promise.then(
        () => report('ok', performance.now() - started, this.live.gatewayId),
        (error: unknown) =>
          report(
            error instanceof StreamOpenError ? error.reason : 'tunnel_failed',
            performance.now() - started,
            this.live.gatewayId,
          ),
      );
    }
    return promise;
  }

  private openStreamInner(
    host: string,
    port: number,
    options: OpenStreamOptions & { timeoutMs: number },
  ): Promise<TunnelStream> {
    const gatewayId = this.live.gatewayId;
    const target = formatAuthority(host, port);
    if (this.closed) {
      return Promise.reject(
        new StreamOpenError('not_connected', `gateway ${gatewayId} is not connected`, gatewayId),
      );
    }
    if (options.signal?.aborted) {
      return Promise.reject(
        new StreamOpenError('aborted', `opening ${target} was aborted`, gatewayId),
      );
    }
    let h2: ClientHttp2Stream;
    try {
      h2 = this.h2.request(
        { ':method': 'CONNECT', ':authority': target },
        { endStream: false, waitForTrailers: true },
      );
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      return Promise.reject(
        new StreamOpenError('tunnel_failed', `tunnel to ${gatewayId}: ${message}`, gatewayId),
      );
    }
    const stream = new TunnelStream(h2, this.options.abortGraceMs, (streamId) =>
      this.send({ type: 'cancel', streamId }),
    );
    // In the same HTTP/2 write as the HEADERS; the gateway reads it once the target is open.
    if (options.sendAhead?.length) h2.write(options.sendAhead);
    // Suppress unhandled 'error' while opening; failures surface as StreamOpenError.
    const swallow = (): void => undefined;
    stream.on('error', swallow);

    return new Promise<TunnelStream>((resolve, reject) => {
      let settled = false;
      const settle = (error: StreamOpenError | null): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.quietWatchers.delete(onQuiet);
        options.signal?.removeEventListener('abort', onAbort);
        h2.off('response', onResponse);
        h2.off('close', onClose);
        if (error) {
          stream.destroy();
          reject(error);
          return;
        }
        stream.off('error', swallow);
        this.openStreams.add(stream);
        const cut = options.cutWhenQuiet
          ? (): void => {
              stream.destroy(
                new StreamQuietError(`gateway ${gatewayId} went quiet during the operation`),
              );
            }
          : undefined;
        if (cut) this.quietWatchers.add(cut);
        stream.once('close', () => {
          this.openStreams.delete(stream);
          if (cut) this.quietWatchers.delete(cut);
        });
        this.openedSinceReport += 1;
        this.live.activeStreams = this.reportedActive + this.openedSinceReport;
        resolve(stream);
      };
      const onResponse = (headers: http2.IncomingHttpHeaders): void => {
        const status = Number(headers[':status']);
        const reason = String(headers[REASON_HEADER] ?? '');
        if (status === StreamStatus.OPEN) return settle(null);
        const detail = reason ? `: ${reason}` : '';
        if (status === StreamStatus.REFUSED) {
          return settle(
            new StreamOpenError(
              'refused',
              `gateway ${gatewayId} refused ${target}${detail}`,
              gatewayId,
              reason,
            ),
          );
        }
        if (status === StreamStatus.UNREACHABLE) {
          return settle(
            new StreamOpenError(
              'unreachable',
              `gateway ${gatewayId} could not reach ${target}${detail}`,
              gatewayId,
              reason,
            ),
          );
        }
        if (status === StreamStatus.DRAINING) {
          return settle(
            new StreamOpenError('draining', `gateway ${gatewayId} is draining`, gatewayId, reason),
          );
        }
        settle(
          new StreamOpenError(
            'tunnel_failed',
            `gateway ${gatewayId} answered ${status}${detail}`,
            gatewayId,
            reason,
          ),
        );
      };
      const onClose = (): void => {
        settle(
          new StreamOpenError(
            'tunnel_failed',
            `tunnel stream to ${gatewayId} closed before the gateway answered (code ${h2.rstCode ?? '?'})`,
            gatewayId,
          ),
        );
      };
      const onAbort = (): void => {
        settle(new StreamOpenError('aborted', `opening ${target} was aborted`, gatewayId));
      };
      const onQuiet = (): void => {
        settle(
          new StreamOpenError(
            'quiet',
            `gateway ${gatewayId} went quiet before answering for ${target}`,
            gatewayId,
          ),
        );
      };
      if (options.abandonWhenQuiet) this.quietWatchers.add(onQuiet);
      const timer = setTimeout(() => {
        settle(
          new StreamOpenError(
            'timeout',
            `gateway ${gatewayId} did not answer for ${target} within ${options.timeoutMs} ms`,
            gatewayId,
          ),
        );
      }, options.timeoutMs);
      h2.on('response', onResponse);
      h2.on('close', onClose);
      options.signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Tunnel round trip, then (if a target is given) a TCP connect test from the gateway. */
  async probe(
    host: string | undefined,
    port: number | undefined,
    timeoutMs: number,
  ): Promise<ProbeOutcome> {
    const started = performance.now();
    let tunnelRttMs: number;
    try {
      tunnelRttMs = await withTimeout(this.ping(), timeoutMs, 'no PING answer');
    } catch (error) {
      return { ok: false, stage: 'tunnel', error: errorMessage(error) };
    }
    if (host === undefined || port === undefined) {
      return { ok: true, rttMs: performance.now() - started, tunnelRttMs };
    }
    const id = randomUUID();
    const result = new Promise<ProbeResult>((resolve) => this.pendingProbes.set(id, resolve));
    if (!this.send({ type: 'probe', id, host, port, timeoutMs })) {
      this.pendingProbes.delete(id);
      return { ok: false, stage: 'tunnel', error: 'control stream unavailable' };
    }
    try {
      const answer = await withTimeout(result, timeoutMs + 500, 'gateway did not answer the probe');
      if (this.closed)
        return { ok: false, stage: 'tunnel', error: `tunnel closed: ${this.closeReason}` };
      if (!answer.ok) return { ok: false, stage: 'target', error: answer.error ?? 'failed' };
      return {
        ok: true,
        rttMs: performance.now() - started,
        tunnelRttMs,
        connectMs: answer.connectMs,
      };
    } catch (error) {
      return { ok: false, stage: 'tunnel', error: errorMessage(error) };
    } finally {
      this.pendingProbes.delete(id);
    }
  }

  /**
   * Drops the tunnel at once (idempotent; the first reason wins). With `goaway`, the gateway is
   * told why before the socket goes (after a short flush delay); callers see 'closed' now.
   */
  close(reason: string, goaway?: GoawayReason): void {
    if (this.closeReason !== null) return;
    this.closeReason = reason;
    clearInterval(this.checkTimer);
    this.sampleBytes();
    for (const [, resolve] of this.pendingProbes) {
      resolve({ type: 'probe-result', id: '', ok: false, error: `tunnel closed: ${reason}` });
    }
    this.pendingProbes.clear();
    // A silent or dead tunnel may let HTTP/2 end its streams without an error; a caller must
    // never mistake that for the target having finished (0 bytes read would look complete).
    for (const stream of this.openStreams) {
      stream.destroy(new Error(`tunnel to gateway ${this.live.gatewayId} lost: ${reason}`));
    }
    this.openStreams.clear();
    const destroy = (): void => {
      this.h2.destroy();
      this.socket.destroy();
    };
    if (goaway && !this.h2.destroyed && !this.socket.destroyed) {
      try {
        this.h2.goaway(http2.constants.NGHTTP2_NO_ERROR, 0, encodeGoaway(goaway));
        setTimeout(destroy, GOAWAY_FLUSH_MS).unref();
      } catch {
        destroy();
      }
    } else {
      destroy();
    }
    this.emit('closed', reason);
  }
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(message)), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}
