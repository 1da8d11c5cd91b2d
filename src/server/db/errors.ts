import { DrizzleQueryError } from 'drizzle-orm/errors';

/**
 * Telling "the database is away" apart from every other failure: those answer 503 with
 * Retry-After (the client can simply try again) instead of 500, and background work logs them
 * once instead of on every tick.
 */

// SQLSTATE classes 08 (connection exception) and 57P (operator intervention: shutdown,
// crash shutdown, cannot connect now while starting up or stopping); and what a new connection
// is refused with: 3D000 (the database does not exist: dropped, or being restored), 53xxx
// (too many connections, out of memory or disk), 28xxx (login refused: a password rotated or
// pg_hba changed). None of these is the client's doing, and each may pass; a 500 would say
// the platform is broken. Only PostgreSQL sets a SQLSTATE, so none of these is a target's.
const UNAVAILABLE_SQLSTATE = /^(08\d{3}|57P0[1-4]|3D000|53\d{3}|28(000|P01))$/;
/**
 * 55000 (object not in prerequisite state) also covers query mistakes (currval before
 * nextval); only its "not accepting connections" (ALTER DATABASE … ALLOW_CONNECTIONS false,
 * as during maintenance) means the database is away.
 */
const NOT_ACCEPTING_CONNECTIONS =
  /is not accepting connections|is not currently accepting connections/i;
const UNAVAILABLE_ERRNO = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTCONN',
  'EAI_AGAIN',
  // Writing to a socket the server already closed (wording differs between Node lines).
  'ERR_STREAM_WRITE_AFTER_END',
  'ERR_STREAM_DESTROYED',
  'ERR_SOCKET_CLOSED',
]);
// node-postgres reports a dropped socket with messages, not codes.
const UNAVAILABLE_MESSAGE =
  /Connection terminated|socket has been ended by the other party|connection error and is not queryable|timeout exceeded when trying to connect|Client was closed and is not queryable|Cannot use a pool after calling end|the database system is (starting up|shutting down|in recovery mode)/i;

/**
 * True when err (or any error in its `cause` chain) means the database cannot be reached.
 * A bare socket error (ECONNREFUSED…) counts only inside a query error: the same code from a
 * gateway target or a Kubernetes API is not the database's.
 */
export function isDatabaseUnavailable(err: unknown, fromQuery = false): boolean {
  let inQuery = fromQuery;
  for (let e = err, depth = 0; e && depth < 8; depth++) {
    if (e instanceof DatabaseUnavailableError) return true;
    if (typeof e !== 'object') return false;
    const { code, message, name } = e as { code?: unknown; message?: unknown; name?: unknown };
    if (e instanceof DrizzleQueryError || name === 'DrizzleQueryError') inQuery = true;
    if (typeof code === 'string' && UNAVAILABLE_SQLSTATE.test(code)) return true;
    if (code === '55000' && typeof message === 'string' && NOT_ACCEPTING_CONNECTIONS.test(message))
      return true;
    if (typeof code === 'string' && inQuery && UNAVAILABLE_ERRNO.has(code)) return true;
    if (typeof message === 'string' && UNAVAILABLE_MESSAGE.test(message)) return true;
    if (e instanceof AggregateError && e.errors.some((x) => isDatabaseUnavailable(x, inQuery)))
      return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/**
 * True when a query met a missing table (42P01): the platform's database was replaced by one
 * without gatepool's schema (dropped and recreated, or the wrong one restored) while it ran.
 * Only an operator can fix that, and no request can succeed until then.
 */
export function isSchemaMissing(err: unknown): boolean {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 8; depth++) {
    if ((e as { code?: unknown }).code === '42P01') return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/** Thrown where we already know the database is away (e.g. no connection could be made). */
export class DatabaseUnavailableError extends Error {
  constructor(cause?: unknown) {
    // "The platform's": a `gatepool connect` user reaches databases too, and must not read this
    // as their own being down. The cause names where it was looked for (never a password).
    const why = cause instanceof Error && cause.message ? ` (${cause.message})` : '';
    super(`The platform's database is not reachable${why}.`, { cause });
  }
}

/** Seconds a client should wait before retrying while the database is away. */
export const DATABASE_RETRY_AFTER_SECONDS = 2;

/**
 * What went wrong with a query, for a log line: the driver's own words (the innermost cause),
 * not drizzle's "Failed query: <sql> params: <every parameter>", which repeats whole batches of
 * rows (audit entries, client addresses) on every retry.
 */
export function dbErrorMessage(err: unknown): string {
  let e: unknown = err;
  for (let depth = 0; depth < 8; depth++) {
    const cause = (e as { cause?: unknown } | null)?.cause;
    if (!(cause instanceof Error)) break;
    e = cause;
  }
  return e instanceof Error ? e.message : String(e);
}

/**
 * Logs "database unavailable" for background work at most once per `everyMs` (with the number
 * of failures since the last line), so an outage gives a few lines, not one per tick.
 */
export function outageLogger(
  warn: (fields: Record<string, unknown>, message: string) => void,
  everyMs = 30_000,
): (what: string, err: unknown) => void {
  let last = 0;
  let suppressed = 0;
  return (what, err) => {
    const now = Date.now();
    if (now - last < everyMs) {
      suppressed++;
      return;
    }
    warn({ err: dbErrorMessage(err), suppressed }, `${what}: database unavailable; will retry`);
    last = now;
    suppressed = 0;
  };
}
