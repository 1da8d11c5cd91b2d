/**
 * When a tunnel that is still up has gone *quiet* (DESIGN §4–§5). Pure, so the rule is shared
 * by the hub (which announces the change) and pool selection (which reads it per request).
 *
 * The hub PINGs every `keepaliveMs`, so a live tunnel is never silent for much longer than one
 * keepalive round plus a round trip. Silence for two rounds plus the last round trip means at
 * least one PING went unanswered: the gateway is not yet `unreachable` (that takes
 * `deadAfterMs`, long enough not to flap on a slow link), but a pool stops giving it new
 * streams. That is how a silently stopped member leaves selection in about half a second
 * while health keeps its one-second definition.
 */
export function quietAfterMs(
  keepaliveMs: number,
  deadAfterMs: number,
  rttMs: number | null,
): number {
  return Math.min(deadAfterMs, 2 * keepaliveMs + Math.ceil(rttMs ?? 0));
}

/**
 * The last-frame time, moved forward by any time this process could not look. A platform
 * stall (a long synchronous task, a GC pause) is our silence, not the gateway's: what it sent
 * meanwhile is still unread in the socket, and the first check after the stall may run before
 * the read. Crediting the gap beyond two check periods keeps a stall from making every tunnel
 * look quiet or dead at once; a gateway that really died during it is noticed that much later.
 */
export function creditStall(
  lastFrameAt: number,
  lastCheckAt: number,
  now: number,
  checkMs: number,
): number {
  const unobserved = now - lastCheckAt - 2 * checkMs;
  return unobserved > 0 ? Math.min(now, lastFrameAt + unobserved) : lastFrameAt;
}

export interface Liveness {
  /** Epoch ms of the last byte received from the gateway. */
  lastFrameAt: number;
  rttMs: number | null;
}

/** Milliseconds of silence when the tunnel is quiet, or null while it is heard from. */
export function quietFor(
  live: Liveness,
  now: number,
  keepaliveMs: number,
  deadAfterMs: number,
): number | null {
  const silent = now - live.lastFrameAt;
  return silent >= quietAfterMs(keepaliveMs, deadAfterMs, live.rttMs) ? silent : null;
}
