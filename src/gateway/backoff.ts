/**
 * Reconnect delays for the agent. Exponential with jitter, capped; the attempt count returns to
 * zero only once a tunnel has stayed up for a grace period. Resetting as soon as a tunnel came
 * up made a tunnel that flaps (up, then cut at once) reconnect every ~100 ms forever; cloudflared
 * also waits for a stable connection before it forgets its backoff.
 */
export interface BackoffOptions {
  /** First delay; doubles per attempt. */
  baseMs: number;
  capMs: number;
  /** How long a tunnel must stay up before the next failure starts again from `baseMs`. */
  graceMs: number;
  now?: () => number;
  /** In [0, 1); injectable so tests see exact delays. */
  random?: () => number;
}

export class Backoff {
  private attempt = 0;
  private upSince: number | undefined;
  private readonly now: () => number;
  private readonly random: () => number;

  constructor(private readonly options: BackoffOptions) {
    if (options.baseMs <= 0 || options.capMs < options.baseMs || options.graceMs < 0) {
      throw new Error('backoff needs 0 < baseMs <= capMs and graceMs >= 0');
    }
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
  }

  /** Attempts since the last stable tunnel (0 before the first failure). */
  get attempts(): number {
    return this.attempt;
  }

  /** The tunnel is up; the count is forgotten only if it stays up for the grace period. */
  up(): void {
    this.upSince = this.now();
  }

  /** The delay before the next attempt, after a failure or a tunnel that went down. */
  next(): number {
    if (this.upSince !== undefined && this.now() - this.upSince >= this.options.graceMs) {
      this.attempt = 0;
    }
    this.upSince = undefined;
    const exp = Math.min(this.options.capMs, this.options.baseMs * 2 ** this.attempt);
    // Past the cap doubling changes nothing; bounding the exponent keeps 2 ** n finite.
    this.attempt = Math.min(this.attempt + 1, 30);
    // Jitter in [exp/2, exp) keeps a fleet of gateways from reconnecting in lockstep.
    return Math.round(exp / 2 + (this.random() * exp) / 2);
  }
}
