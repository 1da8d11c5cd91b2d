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
