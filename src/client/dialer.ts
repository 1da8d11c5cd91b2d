/**
 * Opens one client stream to an access target: a WebSocket to the platform's API port
 * (protocol/access-stream.ts). The platform opens the target before answering, so a refusal
 * (no permission, unknown target, no gateway could reach it) arrives as an HTTP error here.
 */
import type { IncomingMessage } from 'node:http';
import WebSocket from 'ws';
import {
  MAX_MESSAGE_BYTES,
  OPEN_MESSAGE,
  OPENED_MESSAGE,
  REFUSED_PREFIX,
  WsStream,
} from '../protocol/access-stream.js';
import { describeRefusal, unreachable, type TokenSource } from './api.js';
import { ClientError } from './errors.js';

export interface DialOptions {
  platform: string;
  token: string;
  target: string;
  /** Bound on the handshake, which includes the platform opening the target (failover budget 10 s). */
  timeoutMs?: number;
  /** A standby: the handshake completes at once, the target opens on `requestOpen`. */
  deferred?: boolean;
  /** Where the token came from, for the words of a refusal. */
  tokenFrom?: TokenSource;
}

export function streamUrl(platform: string, target: string, deferred = false): string {
  const url = new URL(platform);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/api/v1/access-targets/${encodeURIComponent(target)}/connect`;
  if (deferred) url.search = '?open=deferred';
  return url.toString();
}

export type OpenOutcome =
  | { kind: 'opened' }
  | { kind: 'refused'; message: string }
  /** The stream ended without an answer (a standby the platform or a proxy had closed). */
  | { kind: 'gone' };

/**
 * Asks a standby stream to open its target (protocol/access-stream.ts). Bounded by `timeoutMs`
 * (the platform's failover budget is 10 s); a timeout is a refusal.
 */
export function requestOpen(
  stream: WsStream,
  platform: string,
  timeoutMs = 15_000,
  tokenFrom: TokenSource = 'saved',
): Promise<OpenOutcome> {
  return new Promise((resolve) => {
    const done = (outcome: OpenOutcome) => {
      clearTimeout(timer);
      stream.off('control', onControl);
      stream.off('close', onClose);
      stream.off('error', onError);
      // Unanswered or refused: the stream is done (its close frame must not surface later).
      if (outcome.kind !== 'opened') stream.destroy();
      resolve(outcome);
    };
    const onControl = (text: string) => {
      if (text === OPENED_MESSAGE) done({ kind: 'opened' });
      else if (text.startsWith(REFUSED_PREFIX)) {
        let body: unknown;
        try {
          body = JSON.parse(text.slice(REFUSED_PREFIX.length));
        } catch {
          body = undefined;
        }
        const status = (body as { error?: { code?: string } } | undefined)?.error?.code;
        done({
          kind: 'refused',
          message: describeRefusal(status === 'unauthorized' ? 401 : 0, body, platform, tokenFrom),
        });
      }
    };
    const onClose = () => done({ kind: 'gone' });
    const onError = () => undefined;
    const timer = setTimeout(
      () => done({ kind: 'refused', message: 'the platform did not open the connection in time' }),
      timeoutMs,
    );
    stream.on('control', onControl);
    stream.once('close', onClose);
    stream.on('error', onError);
    if (!stream.usable) return done({ kind: 'gone' });
    stream.sendControl(OPEN_MESSAGE);
  });
}

export function dialTarget(opts: DialOptions): Promise<WsStream> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(streamUrl(opts.platform, opts.target, opts.deferred), {
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
      resolve(new WsStream(ws, 'the platform'));
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
        fail(
          new ClientError(
            describeRefusal(res.statusCode ?? 0, body, opts.platform, opts.tokenFrom),
          ),
        );
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
