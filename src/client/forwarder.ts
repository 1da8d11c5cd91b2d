/**
 * `gatepool connect`'s local side: a TCP listener on 127.0.0.1 whose every accepted connection
 * gets its own client stream to the platform, spliced both ways with half-close. A connection
 * that cannot be opened, or breaks, is closed at once (the local client sees the socket end)
 * and reported as one line; the listener keeps serving.
 */
import net from 'node:net';
import { spliceCounted } from '../protocol/access-stream.js';
import { dialTarget } from './dialer.js';
import { ClientError } from './errors.js';

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

export interface ForwarderOptions {
  platform: string;
  token: string;
  target: string;
  listen: ListenAddress;
  /** One line per event worth telling the user (a failed or broken connection). */
  report: (line: string) => void;
}

export class Forwarder {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  /** Connections that could not be opened, and that broke mid-way. */
  failed = 0;
  broken = 0;

  constructor(private readonly opts: ForwarderOptions) {}

  async start(): Promise<ListenAddress> {
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (s) =>
      this.serve(s),
    );
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => {
        const where = `${this.opts.listen.host}:${this.opts.listen.port}`;
        if (err.code === 'EADDRINUSE')
          reject(new ClientError(`local port ${where} is in use: choose another with --listen`));
        else reject(new ClientError(`cannot listen on ${where}: ${err.message}`));
      });
      server.listen(this.opts.listen.port, this.opts.listen.host, () => resolve());
    });
    const addr = server.address() as net.AddressInfo;
    return { host: addr.address, port: addr.port };
  }

  private serve(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.setNoDelay(true);
    const from = `${socket.remoteAddress}:${socket.remotePort}`;
    // A local client that gives up while the stream opens must not crash the CLI.
    socket.on('error', () => undefined);
    socket.once('close', () => this.sockets.delete(socket));
    dialTarget({ platform: this.opts.platform, token: this.opts.token, target: this.opts.target })
      .then(async (stream) => {
        if (socket.destroyed) {
          stream.destroy();
          return;
        }
        socket.resume();
        const result = await spliceCounted(socket, stream, (error, side) => {
          if (side === stream) {
            // Reset rather than FIN: the local client must see a failure, not a clean end.
            socket.resetAndDestroy();
          }
          void error;
        });
        if (!result.clean && stream.remoteAbort) {
          this.broken += 1;
          this.opts.report(`connection from ${from} closed: ${stream.remoteAbort}`);
        }
      })
      .catch((err: unknown) => {
        this.failed += 1;
        socket.resetAndDestroy();
        this.opts.report(
          `connection from ${from} refused: ${err instanceof Error ? err.message : String(err)}`,
        );
      });
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) =>
      this.server ? this.server.close(() => resolve()) : resolve(),
    );
  }
}
