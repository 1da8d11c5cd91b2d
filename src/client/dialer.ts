/**
 * Opens one client stream to an access target: a WebSocket to the platform's API port
 * (protocol/access-stream.ts). The platform opens the target before answering, so a refusal
 * (no permission, unknown target, no gateway could reach it) arrives as an HTTP error here.
 */
import type { IncomingMessage } from 'node:http';
import WebSocket from 'ws';
import { MAX_MESSAGE_BYTES, WsStream } from '../protocol/access-stream.js';
import { describeRefusal, unreachable } from './api.js';
import { ClientError } from './errors.js';

export interface DialOptions {
  platform: string;
  token: string;
  target: string;
  /** Bound on the handshake, which includes the platform opening the target (failover budget 10 s). */
  timeoutMs?: number;
}

export function streamUrl(platform: string, target: string): string {
  const url = new URL(platform);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/api/v1/access-targets/${encodeURIComponent(target)}/connect`;
  return url.toString();
}

export function dialTarget(opts: DialOptions): Promise<WsStream> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(streamUrl(opts.platform, opts.target), {
      headers: { authorization: `Bearer ${opts.token}`, 'user-agent': 'gatepool-cli' },
      perMessageDeflate: false,
      // A zero masking key (ws skips masking then; measured ~9x the upload throughput). Masking
      // protects proxies from payloads crafted by untrusted scripts in browsers; this client runs
      // no one else's script, and the platform is reached over TLS in production.
      generateMask: (mask: Buffer) => void mask.fill(0),
      maxPayload: MAX_MESSAGE_BYTES,
      handshakeTimeout: opts.timeoutMs ?? 15_000,
    });
    let done = false;
    const fail = (err: Error) => {
      if (done) return;
      done = true;
      ws.terminate();
      reject(err);
    };
    ws.once('open', () => {
      if (done) return;
      done = true;
      ws.removeAllListeners('error');
      resolve(new WsStream(ws));
    });
    ws.once('unexpected-response', (req, res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.length < 64 && chunks.push(c));
      res.on('error', () => undefined);
      res.on('end', () => {
        let body: unknown;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          body = undefined;
        }
        fail(new ClientError(describeRefusal(res.statusCode ?? 0, body, opts.platform)));
        req.destroy();
      });
    });
    ws.on('error', (err: Error) => {
      if (/handshake/i.test(err.message))
        fail(new ClientError(`the platform did not open the connection in time (${err.message})`));
      else fail(unreachable(opts.platform, { cause: err }));
    });
  });
}
