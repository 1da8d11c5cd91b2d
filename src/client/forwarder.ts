/**
 * `gatepool connect`'s local side: a TCP listener on 127.0.0.1 whose every accepted connection
 * gets its own client stream to the platform, spliced both ways with half-close. A connection
 * that cannot be opened, or breaks, is closed at once (the local client sees the socket end)
 * and reported as one line; the listener keeps serving.
 *
 * Streams are opened ahead of need (standbys, `?open=deferred`): an accepted connection takes
 * one that is already connected, authenticated and has its target looked up, and only waits
 * for the target to open. The number kept grows when connections arrive faster than standbys
 * are made (up to MAX_STANDBYS) and shrinks back to one when that stops. A standby found dead
 * (closed by the platform or a proxy) costs nothing but a fresh stream.
 */
import net from 'node:net';
import { spliceCounted, type WsStream } from '../protocol/access-stream.js';
import { dialTarget, requestOpen } from './dialer.js';
import type { TokenSource } from './api.js';
import { ClientError } from './errors.js';
import { formatAuthority } from '../protocol/tunnel.js';

const MAX_STANDBYS = 8;
/** Standbys are pinged this often (proxies cut idle connections) and their number reviewed. */
const TICK_MS = 15_000;
/** After a failed standby, the next waits this long (doubling up to a minute). */
const STANDBY_RETRY_MS = 1000;
/** A standby taken by a connection is replaced at the latest this long after (see there). */
const REPLACE_WITHIN_MS = 50;
/** What a local client may send before its target is open; reading pauses beyond it. */
const MAX_EARLY_BYTES = 256 * 1024;
/**
 * On close, how long connections the local client has finished get to end cleanly (the target's
 * close travels back, close frames are answered) before they are cut.
 */
const CLOSE_GRACE_MS = 2000;
const STOPPED = 'gatepool connect stopped';
/** On close, how long local connections get for a FIN already on its way (see close). */
const LOCAL_END_WAIT_MS = 250;

/** Resolves once a local socket's client has ended its side (or the socket is gone). */
function localEnd(socket: net.Socket): Promise<void> {
  if (socket.readableEnded || socket.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    socket.once('end', () => resolve());
    socket.once('close', () => resolve());
  });
}

export interface ListenAddress {
  host: string;
  port: number;
}

export function parseListen(raw: string): ListenAddress {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:]+)):(\d{1,5})$/.exec(raw) ?? /^()()(\d{1,5})$/.exec(raw);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !Number.isInteger(port) || port > 65535)
    throw new ClientError(`--listen "${raw}" must be HOST:PORT or PORT, e.g. 127.0.0.1:15432`);
  return { host: m[1] || m[2] || '127.0.0.1', port };
}

/** Resolves when `work` settles or `ms` pass, whichever is first; never rejects. */
function bounded(work: Promise<unknown>, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(done, Math.max(0, ms));
    work.then(done, done);
  });
}

/** One accepted local connection and, once open, its stream. */
interface Connection {
  socket: net.Socket;
  stream: WsStream | undefined;
  /** Settles once both sides of the connection have closed (or its open failed). */
  finished: Promise<void>;
}

export interface ForwarderOptions {
  platform: string;
  token: string;
  tokenFrom?: TokenSource;
  target: string;
  listen: ListenAddress;
  /** One line per event worth telling the user (a failed or broken connection). */
  report: (line: string) => void;
  /** Also a line per connection opened and closed, with set-up time, bytes and duration. */
  verbose?: boolean;
}

/** Bytes as a person reads them: 512 B, 1.2 kB, 3.4 MB (powers of 1000, as `ls -h --si`). */
export function formatBytes(n: number): string {
  if (n < 1000) return `${n} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let value = n;
  let unit = -1;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

/** A duration as a person reads it: 35 ms, 2.1 s, 4 min 05 s. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
}

export class Forwarder {
  private server: net.Server | undefined;
  private readonly connections = new Set<Connection>();
  private readonly ready: WsStream[] = [];
  private readonly replaceLater = new WeakSet<WsStream>();
  private dialing = 0;
  private wanted = 1;
  private missedSinceTick = false;
  private standbyFailures = 0;
  private retryAt = 0;
  private tick: NodeJS.Timeout | undefined;
  private closed = false;
  /** Connections that could not be opened, and that broke mid-way. */
  failed = 0;
  broken = 0;

  constructor(private readonly opts: ForwarderOptions) {}

  /** Standbys ready now (tests, status). */
  get standbys(): number {
    return this.ready.length;
  }

  private fill(): void {
    if (this.closed || Date.now() < this.retryAt) return;
    while (this.ready.length + this.dialing < this.wanted) {
      this.dialing += 1;
      dialTarget({
        platform: this.opts.platform,
        token: this.opts.token,
        tokenFrom: this.opts.tokenFrom,
        target: this.opts.target,
        deferred: true,
      }).then(
        (stream) => {
          this.dialing -= 1;
          this.standbyFailures = 0;
          stream.on('error', () => undefined);
          if (this.closed) return void stream.destroy();
          this.ready.push(stream);
          stream.once('close', () => {
            const at = this.ready.indexOf(stream);
            if (at >= 0) {
              this.ready.splice(at, 1);
              this.fill();
            }
          });
        },
        () => {
          // Refused or unreachable: said when a connection needs it (a fresh stream then tells why).
          this.dialing -= 1;
          this.standbyFailures += 1;
          this.retryAt =
            Date.now() + Math.min(60_000, STANDBY_RETRY_MS * 2 ** (this.standbyFailures - 1));
        },
      );
    }
  }

  private takeStandby(): WsStream | undefined {
    for (;;) {
      const stream = this.ready.shift();
      if (!stream) break;
      if (stream.usable) return stream;
    }
    this.missedSinceTick = true;
    this.wanted = Math.min(MAX_STANDBYS, this.wanted + 1);
    this.fill();
    return undefined;
  }

  private onTick(): void {
    for (const stream of this.ready) stream.ping();
    if (!this.missedSinceTick) this.wanted = Math.max(1, this.wanted - 1);
    this.missedSinceTick = false;
    while (this.ready.length > this.wanted) this.ready.pop()?.closeUnused('standby not needed');
    this.fill();
  }

  /**
   * A stream whose target is open: a standby when one is ready, else a fresh one. With a
   * standby, what the local client sends meanwhile goes right behind `open` (the platform holds
   * it until the target is open, so its first bytes do not wait for a round trip to the CLI);
   * a copy is kept until `opened`, so a standby found dead costs a fresh stream, not the bytes.
   */
  private async open(socket: net.Socket): Promise<WsStream> {
    const standby = this.takeStandby();
    if (!standby) return this.fresh();
    const early: Buffer[] = [];
    let earlyBytes = 0;
    const onData = (chunk: Buffer) => {
      early.push(chunk);
      earlyBytes += chunk.length;
      standby.write(chunk);
      if (earlyBytes >= MAX_EARLY_BYTES) socket.pause();
    };
    const outcomeP = requestOpen(standby, this.opts.platform, undefined, this.opts.tokenFrom);
    socket.on('data', onData);
    socket.resume();
    const outcome = await outcomeP;
    socket.off('data', onData);
    socket.pause();
    // A FIN read meanwhile is passed on by the pipe set up next (pipe ends an ended source's
    // destination too).
    if (outcome.kind === 'opened') {
      this.replaceLater.add(standby);
      return standby;
    }
    setImmediate(() => this.fill());
    if (outcome.kind === 'refused') throw new ClientError(outcome.message);
    const stream = await this.fresh();
    for (const chunk of early) stream.write(chunk);
    return stream;
  }

  /**
   * The standby a connection took is replaced once the target's first bytes came back (or
   * REPLACE_WITHIN_MS passed): a new stream's handshake costs the CLI and the platform CPU that
   * the connection's own set-up (e.g. PostgreSQL's startup exchange) is waiting for. Called
   * once the stream is piped: a 'data' listener before that would take bytes from the pipe.
   */
  private replaceAfterFirstReply(stream: WsStream): void {
    let done = false;
    const replace = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      stream.off('data', replace);
      stream.off('close', replace);
      this.fill();
    };
    const timer = setTimeout(replace, REPLACE_WITHIN_MS);
    stream.once('data', replace);
    stream.once('close', replace);
  }

  private fresh(): Promise<WsStream> {
    return dialTarget({
      platform: this.opts.platform,
      token: this.opts.token,
      tokenFrom: this.opts.tokenFrom,
      target: this.opts.target,
    });
  }

  async start(): Promise<ListenAddress> {
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (s) =>
      this.serve(s),
    );
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => {
        const where = formatAuthority(this.opts.listen.host, this.opts.listen.port);
        if (err.code === 'EADDRINUSE')
          reject(new ClientError(`local port ${where} is in use: choose another with --listen`));
        else reject(new ClientError(`cannot listen on ${where}: ${err.message}`));
      });
      server.listen(this.opts.listen.port, this.opts.listen.host, () => resolve());
    });
    const addr = server.address() as net.AddressInfo;
    this.fill();
    this.tick = setInterval(() => this.onTick(), TICK_MS);
    this.tick.unref();
    return { host: addr.address, port: addr.port };
  }

  private serve(socket: net.Socket): void {
    const conn: Connection = { socket, stream: undefined, finished: Promise.resolve() };
    this.connections.add(conn);
    socket.setNoDelay(true);
    const from = formatAuthority(socket.remoteAddress ?? '?', socket.remotePort ?? 0);
    const accepted = performance.now();
    // A local client that gives up while the stream opens must not crash the CLI.
    socket.on('error', () => undefined);
    conn.finished = this.open(socket)
      .then(async (stream) => {
        if (socket.destroyed) {
          stream.destroy();
          return;
        }
        conn.stream = stream;
        const opened = performance.now();
        if (this.opts.verbose)
          this.opts.report(
            `connection from ${from} opened in ${formatDuration(opened - accepted)}`,
          );
        const spliced = spliceCounted(socket, stream, (error, side) => {
          if (side === stream) {
            // Reset rather than FIN: the local client must see a failure, not a clean end.
            socket.resetAndDestroy();
          }
          void error;
        });
        if (this.replaceLater.delete(stream)) this.replaceAfterFirstReply(stream);
        const result = await spliced;
        if (!result.clean && stream.remoteAbort) {
          this.broken += 1;
          this.opts.report(`connection from ${from} closed: ${stream.remoteAbort}`);
        } else if (this.opts.verbose) {
          this.opts.report(
            `connection from ${from} ${result.clean ? 'closed' : 'cut'} after ` +
              `${formatDuration(performance.now() - opened)}: ${formatBytes(result.bytesFromA)} sent, ` +
              `${formatBytes(result.bytesFromB)} received`,
          );
        }
      })
      .catch((err: unknown) => {
        this.failed += 1;
        socket.resetAndDestroy();
        // Stopping cuts connections still opening: that is no refusal worth reporting.
        if (this.closed) return;
        this.opts.report(
          `connection from ${from} refused: ${err instanceof Error ? err.message : String(err)}`,
        );
      })
      .finally(() => this.connections.delete(conn));
  }

  /** Cuts a connection, telling the platform why (the local client sees a reset). */
  private abort(conn: Connection): void {
    if (conn.stream) conn.stream.abort(STOPPED);
    conn.socket.resetAndDestroy();
  }

  /**
   * Stops listening and ends every stream. A connection whose local client has finished (sent
   * its FIN, e.g. a psql that exited) is still on its way to a clean end: the target's close
   * has to travel back. It gets up to CLOSE_GRACE_MS, so the platform records it as closed
   * rather than cut; connections still in use are cut at once. Resolves once the platform has
   * answered every close frame, or the grace is over.
   */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.tick);
    const deadline = Date.now() + CLOSE_GRACE_MS;
    const closing: Promise<unknown>[] = [
      new Promise<void>((resolve) =>
        this.server ? this.server.close(() => resolve()) : resolve(),
      ),
    ];
    for (const stream of this.ready.splice(0)) {
      stream.closeUnused(STOPPED);
      closing.push(stream.whenClosed(CLOSE_GRACE_MS));
    }
    // A command that just exited closed its connections as it did, but their FINs may be read
    // a turn or two after its exit is (measured: one turn was not always enough, and a clean
    // `pg_isready` was cut and audited as broken). A client still connected is cut after that.
    await bounded(
      Promise.all([...this.connections].map((conn) => localEnd(conn.socket))),
      LOCAL_END_WAIT_MS,
    );
    for (const conn of [...this.connections]) {
      if (!conn.socket.readableEnded) this.abort(conn);
      closing.push(
        conn.finished.then(() =>
          conn.stream ? conn.stream.whenClosed(deadline - Date.now()) : undefined,
        ),
      );
    }
    await bounded(Promise.all(closing), deadline - Date.now());
    for (const conn of this.connections) this.abort(conn);
  }
}
