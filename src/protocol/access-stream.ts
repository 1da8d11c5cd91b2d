/**
 * The client ↔ platform stream of `gatepool connect` (DESIGN §6): one WebSocket per client
 * connection on the platform's API port, carrying the connection's bytes as binary messages.
 *
 * WebSocket rather than HTTP/2 extended CONNECT: every HTTP/1.1 proxy, ingress and load balancer
 * in common use passes WebSocket upgrades through (often by default), while RFC 8441 needs
 * HTTP/2 end to end and is off or missing in most of them; TLS comes from whatever serves the
 * API. WebSocket has no half-close, so one is added: a text message `end` means "no more data
 * from me" (TCP FIN). Close code 1000 follows once both directions ended; any other close code
 * is an abnormal end carrying the reason (a member died, the target reset), so a broken
 * connection never looks like a complete one.
 *
 * A stream may also be opened ahead of need (`?open=deferred`, the CLI's standby): the
 * handshake completes at once, and the target is opened only when the client sends the text
 * message `open`. The platform answers `opened` once the target is open (then bytes flow), or
 * `refused <JSON error body>` and close code 4001 when it could not be opened — a refusal is
 * told in full, where a close reason holds 123 bytes.
 *
 * Shared by the CLI (src/client) and the platform (src/server/access-targets).
 */
import { Duplex } from 'node:stream';
import type { RawData, WebSocket } from 'ws';

/** Text message: the sender's half-close. */
const END_MESSAGE = 'end';
/** Text messages of a deferred open (see above). */
export const OPEN_MESSAGE = 'open';
export const OPENED_MESSAGE = 'opened';
export const REFUSED_PREFIX = 'refused ';
/**
 * Text message right before an abnormal close whose reason does not fit a close frame (123
 * bytes, ASCII here): the whole reason, which the receiver then reports instead of the cut one.
 * A peer that does not know it hears an unknown control message and ignores it.
 */
const ABORTED_PREFIX = 'aborted ';
/** Close code for an abnormal end; the close reason says why. */
export const ABORT_CLOSE_CODE = 4000;
/** Close code after a `refused` message: the target was never opened. */
export const REFUSED_CLOSE_CODE = 4001;
/** Messages larger than this are refused (a client sends at most one socket read per message). */
export const MAX_MESSAGE_BYTES = 4 * 1024 * 1024;

const HIGH_WATER_MARK = 1024 * 1024;
/** Bytes handed to the WebSocket but not yet on the socket; bounded so a slow peer pushes back. */
const MAX_QUEUED = 2 * 1024 * 1024;
/** How long a closing peer has to answer our close frame before the socket is dropped. */
const CLOSE_GRACE_MS = 2000;
/** Largest message a batch grows to before it is sent without waiting for the turn's end. */
const MAX_BATCH = 64 * 1024;

/** WebSocket close reasons are at most 123 bytes of UTF-8. */
function closeReason(text: string): string {
  const clean = text.replace(/[^\x20-\x7e]/g, '?');
  return clean.length > 120 ? `${clean.slice(0, 117)}...` : clean;
}

export class WsStream extends Duplex {
  private queued = 0;
  private batch: Buffer[] = [];
  private batchBytes = 0;
  private flushScheduled = false;
  private waitingWrite: (() => void) | undefined;
  private waitingBytes: { bytes: number; done: (got: boolean) => void } | undefined;
  private gotEnd = false;
  private sentEnd = false;
  /** Why the peer ended abnormally, once it did. */
  remoteAbort: string | undefined;
  /** The peer's whole reason, sent ahead of a close frame too small for it. */
  private abortText: string | undefined;

  /** `peer`: who is at the other end, in words for a lost connection ("the platform"). */
  constructor(
    private readonly ws: WebSocket,
    private readonly peer = 'the peer',
  ) {
    super({
      allowHalfOpen: true,
      readableHighWaterMark: HIGH_WATER_MARK,
      writableHighWaterMark: HIGH_WATER_MARK,
    });
    ws.binaryType = 'nodebuffer';
    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (this.destroyed) return;
      if (!isBinary) {
        const text = data.toString();
        if (text === END_MESSAGE) {
          if (this.gotEnd) return;
          this.gotEnd = true;
          this.push(null);
          this.waitingBytes?.done(false);
          this.closeWhenDone();
        } else if (text.startsWith(ABORTED_PREFIX)) {
          this.abortText = text.slice(ABORTED_PREFIX.length);
        } else this.emit('control', text);
        return;
      }
      if (this.gotEnd) return;
      if (!this.push(data as Buffer)) ws.pause();
      if (this.waitingBytes && this.readableLength >= this.waitingBytes.bytes)
        this.waitingBytes.done(true);
    });
    ws.on('error', (error: Error) => this.destroy(error));
    ws.on('close', (code: number, reason: Buffer) => {
      if (this.destroyed) return;
      if (code === 1000 && this.gotEnd && this.sentEnd) return;
      this.remoteAbort =
        (code === ABORT_CLOSE_CODE ? this.abortText : undefined) ??
        (reason.toString() || this.closedWithout(code));
      this.destroy(new Error(this.remoteAbort));
    });
  }

  /** Why the stream ended, when the peer's close gave no reason. */
  private closedWithout(code: number): string {
    // 1006: no close frame at all — the peer's process died or the network dropped.
    if (code === 1006)
      return `lost the connection to ${this.peer} (it stopped, or the network dropped)`;
    return `${this.peer} closed the connection (WebSocket close code ${code})`;
  }

  override _read(): void {
    if (this.ws.isPaused) this.ws.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, callback: (e?: Error | null) => void) {
    this.queued += chunk.length;
    // Pieces, so no message outgrows what the peer accepts (MAX_MESSAGE_BYTES).
    for (let at = 0; at < chunk.length; at += MAX_BATCH) {
      const piece = chunk.length > MAX_BATCH ? chunk.subarray(at, at + MAX_BATCH) : chunk;
      this.batch.push(piece);
      this.batchBytes += piece.length;
      if (this.batchBytes >= MAX_BATCH) this.flush();
    }
    if (this.batch.length && !this.flushScheduled) {
      this.flushScheduled = true;
      // A microtask, not setImmediate: it runs once the current I/O callback is done (after
      // every frame of one socket read) without waiting a whole event-loop turn.
      queueMicrotask(this.flushSoon);
    }
    // Acknowledged once queued, not once sent: waiting per chunk would idle the socket.
    if (this.queued < MAX_QUEUED) callback();
    else this.waitingWrite = () => callback();
  }

  private readonly flushSoon = (): void => {
    this.flushScheduled = false;
    this.flush();
  };

  /**
   * Sends what was written during one I/O callback as one message: a tunnel stream hands
   * over 8–16 KiB pieces, and a message per piece costs a syscall and a wake-up at each end
   * (measured: half the download throughput).
   */
  private flush(): void {
    if (!this.batch.length) return;
    const data =
      this.batch.length === 1 ? this.batch[0]! : Buffer.concat(this.batch, this.batchBytes);
    const bytes = this.batchBytes;
    this.batch = [];
    this.batchBytes = 0;
    if (this.ws.readyState !== this.ws.OPEN) return;
    this.ws.send(data, { binary: true }, (error?: Error) => {
      this.queued -= bytes;
      if (error) {
        this.destroy(error);
        return;
      }
      const waiting = this.waitingWrite;
      if (waiting && this.queued < MAX_QUEUED) {
        this.waitingWrite = undefined;
        waiting();
      }
    });
  }

  override _final(callback: (e?: Error | null) => void): void {
    this.flush();
    this.ws.send(END_MESSAGE, { binary: false }, (error?: Error) => {
      if (error) {
        callback(error);
        return;
      }
      this.sentEnd = true;
      this.closeWhenDone();
      callback();
    });
  }

  override _destroy(error: Error | null, callback: (e?: Error | null) => void): void {
    const ws = this.ws;
    if (ws.readyState === ws.CONNECTING) ws.terminate();
    else if (ws.readyState === ws.OPEN) {
      if (this.gotEnd && this.sentEnd) ws.close(1000);
      else {
        const why = error?.message ?? 'connection aborted';
        const short = closeReason(why);
        if (short !== why) ws.send(ABORTED_PREFIX + why, { binary: false });
        ws.close(ABORT_CLOSE_CODE, short);
      }
      // A peer that never answers the close (dead host) must not hold the socket for ws's 30 s.
      setTimeout(() => ws.terminate(), CLOSE_GRACE_MS).unref();
    }
    callback(error);
  }

  /**
   * Resolves once the WebSocket is closed (its close frame answered, or the socket dropped), or
   * after `ms`. This stream's 'close' comes when it is destroyed, which is when the close
   * handshake starts, not when it is over: exiting before then cuts a close frame the peer has
   * yet to see.
   */
  whenClosed(ms: number): Promise<void> {
    const ws = this.ws;
    if (ws.readyState === ws.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        ws.off('close', done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      ws.once('close', done);
    });
  }

  /** Ends the stream abnormally, telling the peer why (a close frame with the reason). */
  abort(reason: string): void {
    this.destroy(new Error(reason));
  }

  /** A text message of the deferred open (`open`, `opened`); the peer hears it as 'control'. */
  sendControl(text: string): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(text, { binary: false });
  }

  /** Says why the target could not be opened (`body`: the API's JSON error) and closes. */
  refuse(reason: string, body: unknown): void {
    if (this.ws.readyState === this.ws.OPEN) {
      this.ws.send(REFUSED_PREFIX + JSON.stringify(body), { binary: false });
      this.ws.close(REFUSED_CLOSE_CODE, closeReason(reason));
      setTimeout(() => this.ws.terminate(), CLOSE_GRACE_MS).unref();
    }
    this.destroy();
  }

  /** Ends a stream that was never used, normally (an idle standby, a shutdown). */
  closeUnused(reason: string): void {
    if (this.ws.readyState === this.ws.OPEN) {
      this.ws.close(1000, closeReason(reason));
      setTimeout(() => this.ws.terminate(), CLOSE_GRACE_MS).unref();
    }
    this.destroy();
  }

  /** Keeps an idle stream alive through proxies that cut silent connections. */
  ping(): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.ping();
  }

  /**
   * Resolves true once at least `bytes` are buffered for reading, without reading them; false
   * when `ms` pass, the peer ends or the stream closes first (a deferred open looking at the
   * client's first bytes, see access-targets/replay-safe.ts). One wait at a time.
   */
  whenBuffered(bytes: number, ms: number): Promise<boolean> {
    if (this.readableLength >= bytes) return Promise.resolve(true);
    if (this.gotEnd || !this.usable) return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = (got: boolean) => {
        clearTimeout(timer);
        this.off('close', onClose);
        this.waitingBytes = undefined;
        resolve(got);
      };
      const onClose = () => done(false);
      const timer = setTimeout(onClose, ms);
      this.once('close', onClose);
      this.waitingBytes = { bytes, done };
    });
  }

  /**
   * The peer ended its side (its `end` arrived), whether or not the end was read yet: a
   * stream's own `readableEnded` says so only once everything before it was consumed.
   */
  get peerEnded(): boolean {
    return this.gotEnd;
  }

  /** True while messages can still be sent and received. */
  get usable(): boolean {
    return !this.destroyed && this.ws.readyState === this.ws.OPEN;
  }

  private closeWhenDone(): void {
    if (this.gotEnd && this.sentEnd && this.ws.readyState === this.ws.OPEN) this.ws.close(1000);
  }
}

export interface SpliceResult {
  /** True when both directions ended cleanly. */
  clean: boolean;
  error?: Error;
  /** Bytes read from `a` (written to `b`) and from `b` (written to `a`). */
  bytesFromA: number;
  bytesFromB: number;
}

/**
 * Joins two duplex streams both ways with half-close (two plain pipes: `stream.pipeline(a, b, a)`
 * intermittently cut the tail of transfers, DESIGN §2). A side's readable end ends the other's
 * writable; a side that errors or closes before its readable ended destroys both, so an
 * abnormal end is never passed on as a clean end-of-stream. `onAbort` hears the first error
 * before either side is destroyed, so the survivor can be told why.
 */
export function spliceCounted(
  a: Duplex,
  b: Duplex,
  onAbort?: (error: Error | undefined, from: Duplex) => void,
): Promise<SpliceResult> {
  return new Promise((resolve) => {
    let firstError: Error | undefined;
    let aborted = false;
    let closed = 0;
    let bytesFromA = 0;
    let bytesFromB = 0;

    const abortBoth = (from: Duplex, error?: Error): void => {
      if (error && !firstError) firstError = error;
      if (aborted) return;
      aborted = true;
      onAbort?.(error, from);
      a.unpipe(b);
      b.unpipe(a);
      a.destroy();
      b.destroy();
    };

    const watch = (side: Duplex): void => {
      side.on('error', (error: Error) => abortBoth(side, error));
      side.on('close', () => {
        if (!side.readableEnded) abortBoth(side);
        closed += 1;
        if (closed === 2) resolve({ clean: !aborted, error: firstError, bytesFromA, bytesFromB });
      });
    };

    watch(a);
    watch(b);
    a.on('data', (chunk: Buffer) => void (bytesFromA += chunk.length));
    b.on('data', (chunk: Buffer) => void (bytesFromB += chunk.length));
    a.pipe(b);
    b.pipe(a);
  });
}
