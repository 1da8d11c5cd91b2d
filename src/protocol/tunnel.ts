/**
 * Wire contract of the gateway tunnel (DESIGN §2). The platform is the HTTP/2 client and the
 * gateway the HTTP/2 server on a TLS socket the gateway dialed.
 *
 * One target connection = one `CONNECT` stream with `:authority host:port`. The gateway answers
 * 200 only once the target socket is connected; any other status means nothing reached the
 * target, so the platform may retry elsewhere.
 */

/** Human-readable cause of a non-200 answer, e.g. `ECONNREFUSED 127.0.0.1:5999`. */
export const REASON_HEADER = 'x-gatepool-reason';

/**
 * Sent by the platform as a trailer (END_STREAM) to cancel a stream. Node 20's HTTP/2 server
 * closes the whole session after ~1,000 received RST_STREAMs (DESIGN §2 trap 1), so the
 * platform cancels with this trailer and the gateway (which may send RSTs freely) tears down.
 */
export const ABORT_TRAILER = 'x-gatepool-abort';

export const StreamStatus = {
  OPEN: 200,
  BAD_REQUEST: 400,
  REFUSED: 403,
  /** Platform cancelled before the target answered; nobody reads this answer. */
  CANCELLED: 499,
  UNREACHABLE: 502,
  DRAINING: 503,
} as const;

/** Long-lived stream the platform opens (`POST /control`) carrying NDJSON both ways. */
export const CONTROL_PATH = '/control';

export const PROTOCOL_VERSION = 1;
/** Reported in gateway status; kept in step with package.json by hand. */
export const GATEPOOL_VERSION = '0.1.0';

/** How often the gateway reports status on the control stream. */
export const STATUS_INTERVAL_MS = 1000;

/**
 * HTTP/2 tuning shared by both ends. Node's defaults (64 KiB windows, 100 streams) halve bulk
 * throughput and cap concurrency (DESIGN §2).
 */
export const H2_TUNING = {
  /** Per-stream receive window (SETTINGS_INITIAL_WINDOW_SIZE). */
  streamWindow: 8 * 1024 * 1024,
  /** Connection-level receive window (setLocalWindowSize). */
  sessionWindow: 64 * 1024 * 1024,
  maxConcurrentStreams: 100_000,
  maxFrameSize: 1024 * 1024 - 1,
  /** MiB; Node's default of 10 is exceeded by a few tuned windows in flight. */
  maxSessionMemory: 1024,
} as const;

/** `host:port` with IPv6 literals bracketed, as `:authority` requires. */
export function formatAuthority(host: string, port: number): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`;
}

export interface HostPort {
  host: string;
  port: number;
}

/** Inverse of formatAuthority; null for anything that is not `host:port` with a valid port. */
export function parseAuthority(authority: string | undefined): HostPort | null {
  if (!authority) return null;
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(authority);
  if (!match) return null;
  const port = Number(match[3]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) return null;
  const host = match[1] ?? match[2];
  return host ? { host, port } : null;
}

/**
 * Why the platform closed a tunnel, sent as GOAWAY opaque data. TLS cannot carry an application
 * reason once the handshake succeeded, and a gateway whose certificate verifies but whose record
 * is deleted or revoked should say so instead of looking like a network fault.
 *
 * - `revoked`: final. The platform has no such gateway, or this is not its current certificate
 *   (deleted, revoked, re-enrolled elsewhere); the agent stops instead of retrying forever.
 * - `unavailable`: the platform could not check the gateway just now (e.g. its database is
 *   down); the agent retries.
 * - `refused`: the certificate itself is unacceptable (no identity, wrong org CA).
 * Kinds an older agent does not know decode as null, which it treats as a lost connection.
 */
export type GoawayKind =
  'refused' | 'revoked' | 'unavailable' | 'disconnected' | 'replaced' | 'shutdown';

export interface GoawayReason {
  kind: GoawayKind;
  message: string;
}

const GOAWAY_KINDS: ReadonlySet<string> = new Set([
  'refused',
  'revoked',
  'unavailable',
  'disconnected',
  'replaced',
  'shutdown',
]);
// GOAWAY debug data rides in one frame; keep it well under the smallest allowed frame size.
const MAX_GOAWAY_MESSAGE = 512;

export function encodeGoaway(reason: GoawayReason): Buffer {
  return Buffer.from(
    JSON.stringify({ gatepool: reason.kind, message: reason.message.slice(0, MAX_GOAWAY_MESSAGE) }),
  );
}

export function decodeGoaway(data: Buffer | undefined): GoawayReason | null {
  if (!data || data.length === 0) return null;
  try {
    const value: unknown = JSON.parse(data.toString('utf8'));
    if (typeof value !== 'object' || value === null) return null;
    const { gatepool, message } = value as Record<string, unknown>;
    if (typeof gatepool !== 'string' || !GOAWAY_KINDS.has(gatepool)) return null;
    return { kind: gatepool as GoawayKind, message: typeof message === 'string' ? message : '' };
  } catch {
    return null;
  }
}

/**
 * TLS for the tunnel. AES-GCM decryption was a fifth of the gateway's CPU on bulk uploads (perf);
 * the 128-bit variant does 10 rounds instead of 14 and is as standard in TLS 1.3, so the hub
 * prefers it. bench/tunnel's reference TLS relay uses the same settings.
 */
export const TUNNEL_TLS = {
  minVersion: 'TLSv1.3',
  ciphers: 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256',
} as const;

/** ALPN both ends offer; Node's HTTP/2 server drops TLS sockets that negotiated no protocol. */
export const TUNNEL_ALPN = 'h2';
