/**
 * One CONNECT stream on the gateway: dial the target, answer, then shuttle bytes both ways.
 *
 * The 200 goes out only once the target socket is connected, so any other answer means nothing
 * reached the target and the platform may retry elsewhere (DESIGN §5).
 *
 * Byte shuttling uses two plain pipes with explicit end handling rather than stream.pipeline
 * (DESIGN §2 trap 2), and keeps TCP half-close: the platform's END_STREAM becomes a FIN to the
 * target and the target's FIN becomes END_STREAM, independently.
 *
 * Cancellation arrives as a trailer (ABORT_TRAILER) or a control-stream `cancel` message, never
 * as RST_STREAM from the platform (trap 1). The gateway answers a cancel by resetting the target
 * connection and ending its side of the stream.
 *
 * An abnormal end the other way (the target reset the connection) also travels as ABORT_TRAILER
 * on the gateway's END_STREAM rather than as RST_STREAM: Node's Http2Stream.close(code) sends
 * END_STREAM before the RST, so the platform would first see what looks like a clean end.
 */
import net from 'node:net';
import http2, { type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { forwardBatched } from '../protocol/forward.js';
import {
  ABORT_TRAILER,
  formatAuthority,
  REASON_HEADER,
  StreamStatus,
  type HostPort,
} from '../protocol/tunnel.js';

type State = 'dialing' | 'open' | 'closed';

export function sanitizeReason(reason: string): string {
  // Header values must be visible ASCII; errors may carry anything.
  return reason.replace(/[^\x20-\x7e]/g, '?').slice(0, 300);
}

/** Answers a stream that will not be served; the client side is drained so the stream can close. */
export function refuseStream(stream: ServerHttp2Stream, status: number, reason: string): void {
  stream.resume();
  if (stream.destroyed || stream.closed || stream.headersSent) return;
  try {
    stream.respond(
      { ':status': status, [REASON_HEADER]: sanitizeReason(reason) },
      { endStream: true },
    );
  } catch {
    // The platform went away between the check and the answer; nothing left to tell.
  }
}

export function describeSocketError(error: Error, target: HostPort): string {
  const code = (error as NodeJS.ErrnoException).code;
  const where = formatAuthority(target.host, target.port);
  if (code && error.message.includes(code))
    return error.message.includes(where) ? error.message : `${error.message} (${where})`;
  return code ? `${code} ${where}: ${error.message}` : `${where}: ${error.message}`;
}

export class ConnectStream {
  private state: State = 'dialing';
  private aborted = false;
  private readonly socket: net.Socket;
  private streamClosed = false;
  private socketClosed = false;
  private done = false;
  /** Set when this side ends abnormally; sent as ABORT_TRAILER. */
  private abortReason: string | undefined;
  private targetError: string | undefined;

  constructor(
    private readonly stream: ServerHttp2Stream,
    private readonly target: HostPort,
    dialTimeoutMs: number,
    /** Called once when both the stream and the target socket are gone. */
    private readonly onDone: () => void,
  ) {
    // Errors surface through 'close' and rstCode; an unhandled 'error' would crash the agent.
    stream.on('error', () => undefined);
    stream.on('trailers', (trailers: IncomingHttpHeaders) => {
      if (trailers[ABORT_TRAILER] !== undefined) this.abort('cancelled by the platform');
    });
    stream.on('close', () => this.onStreamClose());

    this.socket = net.connect({
      host: target.host,
      port: target.port,
      allowHalfOpen: true,
      noDelay: true,
      // Room for a batch of DATA pieces between uncorks before backpressure kicks in.
      writableHighWaterMark: 1024 * 1024,
    } as net.NetConnectOpts);
    this.socket.setTimeout(dialTimeoutMs, () => {
      if (this.state === 'dialing') {
        this.socket.destroy(new Error(`connect timed out after ${dialTimeoutMs} ms`));
      }
    });
    this.socket.once('connect', () => this.onConnected());
    this.socket.on('error', (error: Error) => {
      this.targetError ??= describeSocketError(error, target);
      if (this.state === 'dialing') {
        this.state = 'closed';
        refuseStream(stream, StreamStatus.UNREACHABLE, describeSocketError(error, target));
      }
    });
    this.socket.on('close', (hadError) => this.onSocketClose(hadError));
  }

  get streamId(): number | undefined {
    return this.stream.id;
  }

  private onConnected(): void {
    this.socket.setTimeout(0);
    if (this.state !== 'dialing' || this.stream.destroyed || this.stream.closed) {
      this.socket.destroy();
      return;
    }
    this.state = 'open';
    const { stream, socket } = this;
    stream.on('wantTrailers', () => {
      const reason = this.abortReason;
      try {
        stream.sendTrailers(
          reason === undefined ? {} : { [ABORT_TRAILER]: sanitizeReason(reason) },
        );
      } catch {
        // The stream was reset meanwhile; the platform already knows it did not end cleanly.
      }
    });
    try {
      stream.respond({ ':status': StreamStatus.OPEN }, { waitForTrailers: true });
    } catch {
      this.socket.destroy();
      return;
    }
    // What the platform sent with the CONNECT (access-targets/replay-safe.ts) leaves now, not a
    // turn later.
    const ahead = stream.read() as Buffer | null;
    if (ahead) socket.write(ahead);
    forwardBatched(stream, socket);
    // 'trailers' is emitted before 'end', so an aborted stream never forwards a clean FIN.
    stream.on('end', () => {
      if (!this.aborted) socket.end();
    });
    socket.pipe(stream);
  }

  /** Cancel requested by the platform (abort trailer or control message). */
  abort(reason: string): void {
    if (this.aborted) return;
    this.aborted = true;
    const { stream, socket } = this;
    if (this.state === 'dialing') {
      this.state = 'closed';
      socket.destroy();
      refuseStream(stream, StreamStatus.CANCELLED, reason);
      return;
    }
    this.endAbnormally(reason);
  }

  /** Drain timeout: cut the target and tell the platform the stream did not complete. */
  kill(reason: string): void {
    if (this.state === 'dialing') {
      this.abort(reason);
      return;
    }
    this.aborted = true;
    this.endAbnormally(reason);
  }

  private endAbnormally(reason: string): void {
    this.state = 'closed';
    this.abortReason ??= reason;
    const { stream, socket } = this;
    stream.removeAllListeners('data');
    socket.unpipe(stream);
    resetSocket(socket);
    stream.resume();
    if (stream.destroyed || stream.closed) return;
    if (!stream.writableEnded) {
      stream.end();
    } else if (!stream.writableFinished) {
      // END_STREAM is queued behind data the platform is not reading; nothing to wait for.
      stream.close(http2.constants.NGHTTP2_CANCEL);
    }
  }

  private onSocketClose(hadError: boolean): void {
    this.socketClosed = true;
    const { stream } = this;
    if (this.state === 'open' && !this.aborted && (hadError || !this.socket.readableEnded)) {
      // The target failed mid-stream: the platform must not mistake this for a clean end.
      if (!stream.writableEnded) {
        this.endAbnormally(this.targetError ?? 'the target closed the connection abnormally');
      } else if (!stream.destroyed && !stream.closed) {
        // Our END_STREAM already left (the target's read side ended cleanly); only a reset
        // can still report that the other direction failed.
        stream.close(http2.constants.NGHTTP2_CONNECT_ERROR);
      }
    }
    this.finish();
  }

  private onStreamClose(): void {
    this.streamClosed = true;
    const { stream } = this;
    const clean =
      stream.rstCode === http2.constants.NGHTTP2_NO_ERROR || stream.rstCode === undefined;
    if (!this.socket.destroyed && (!clean || this.state === 'dialing' || !stream.readableEnded)) {
      this.state = 'closed';
      resetSocket(this.socket);
    }
    this.finish();
  }

  private finish(): void {
    if (this.streamClosed && this.socketClosed && !this.done) {
      this.done = true;
      this.onDone();
    }
  }
}

function resetSocket(socket: net.Socket): void {
  if (socket.destroyed) return;
  if (socket.connecting) {
    socket.destroy();
    return;
  }
  try {
    // An RST tells the target the session was cut, not completed.
    socket.resetAndDestroy();
  } catch {
    socket.destroy();
  }
}
