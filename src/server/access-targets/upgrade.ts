/**
 * WebSocket upgrades on the API port for client streams (protocol/access-stream.ts). Upgrade
 * requests are routed through Fastify like any request, so the auth hook (token, permission)
 * and the error answers apply unchanged; a route then takes the socket over with `pending()`.
 */
import { ServerResponse, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { WebSocketServer } from 'ws';
import { MAX_MESSAGE_BYTES, WsStream } from '../../protocol/access-stream.js';
import { DATABASE_RETRY_AFTER_SECONDS, isDatabaseUnavailable } from '../db/errors.js';
import {
  DATABASE_UNAVAILABLE,
  DomainError,
  errorBodyOf,
  statusOf,
  type ErrorBody,
} from '../http/errors.js';

/** An upgrade request the route has not answered yet. */
export interface PendingUpgrade {
  /** What the handshake lacks, or null when it can be completed. */
  problem(): string | null;
  /** Completes the handshake; null when the client left first. Call at most once. */
  accept(): Promise<WsStream | null>;
  /** Answers with an HTTP error instead (only before accept). */
  refuse(err: unknown): void;
}

export class ClientStreams {
  private readonly upgrades = new WeakMap<IncomingMessage, { socket: Duplex; head: Buffer }>();
  private readonly wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    maxPayload: MAX_MESSAGE_BYTES,
  });

  constructor(app: FastifyInstance) {
    app.server.on('upgrade', (raw: IncomingMessage, socket: Duplex, head: Buffer) => {
      // Until ws owns the socket, a client reset must not crash the process.
      socket.on('error', () => undefined);
      this.upgrades.set(raw, { socket, head });
      const res = new ServerResponse(raw);
      res.assignSocket(socket as Socket);
      // An answer other than the upgrade (401, 403, 404, 503) ends the exchange.
      res.on('finish', () => socket.end());
      app.routing(raw, res);
    });
    app.addHook('preClose', async () => void this.wss.close());
  }

  /** The upgrade behind this request, or undefined for a plain request. */
  pending(raw: IncomingMessage, res: ServerResponse): PendingUpgrade | undefined {
    const upgrade = this.upgrades.get(raw);
    if (!upgrade) return undefined;
    let settled = false;
    return {
      problem: () => handshakeProblem(raw),
      accept: () =>
        new Promise<WsStream | null>((resolve) => {
          const gone = () => {
            if (!settled) {
              settled = true;
              resolve(null);
            }
          };
          if (upgrade.socket.destroyed) return gone();
          upgrade.socket.once('close', gone);
          this.wss.handleUpgrade(raw, upgrade.socket, upgrade.head, (ws) => {
            upgrade.socket.off('close', gone);
            if (settled) return void ws.terminate();
            settled = true;
            resolve(new WsStream(ws, 'the client'));
          });
        }),
      refuse: (err) => {
        if (settled) upgrade.socket.destroy();
        else sendError(res, err);
      },
    };
  }
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

/**
 * How a refused stream is answered, whether before the handshake (HTTP status and body) or
 * after it (the body in a `refused` message): as the API answers the same error, a database
 * outage included (503 database_unavailable, to be retried, not an internal error).
 */
export function refusalOf(err: unknown): { status: number; body: ErrorBody } {
  if (err instanceof DomainError) return { status: statusOf(err), body: errorBodyOf(err) };
  if (isDatabaseUnavailable(err)) return { status: 503, body: DATABASE_UNAVAILABLE };
  return {
    status: 500,
    body: {
      error: {
        code: 'internal_error',
        message: 'The connection failed on the platform; see its log.',
      },
    },
  };
}

function sendError(res: ServerResponse, err: unknown): void {
  if (res.headersSent || res.destroyed) return;
  const { status, body } = refusalOf(err);
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    connection: 'close',
    ...(status === 503 ? { 'retry-after': String(DATABASE_RETRY_AFTER_SECONDS) } : {}),
  });
  res.end(text);
}
