import type { Actor } from './actor.js';

/**
 * Resolved callers by the SHA-256 of their credential (never the credential itself), so that
 * a request with a known session or access token costs no database query: on the embedded
 * database every query costs the platform's own event loop a millisecond or two, on every
 * request and every `gatepool connect`.
 *
 * Correctness rests on invalidation, not on the age limit: everything this process changes
 * about people, identities, roles or credentials clears the whole cache before it answers
 * (see app.ts and local-admin/). The age limit only bounds how long a change made behind the
 * platform's back (someone editing the database by hand) goes unnoticed. A credential's own
 * expiry is honoured to the millisecond: an expired one is never served from here.
 *
 * While the database is away, an entry past that age is still served (`getDuringOutage`, up to
 * CREDENTIAL_OUTAGE_MAX_AGE_MS): nothing can be revoked meanwhile, and what this process revoked
 * before cleared it. So a caller that was working keeps working through a database restart,
 * instead of failing at whatever moment its entry happens to reach 30 s.
 */

export interface CredentialCacheOptions {
  /** Entries kept at most; the oldest goes first. */
  maxEntries?: number;
  /** How long an entry is served before the database is asked again. */
  maxAgeMs?: number;
  /** How long an entry may still be served while the database is away. */
  outageMaxAgeMs?: number;
  /** Milliseconds since the epoch (tests move it). */
  now?: () => number;
}

/** What a lookup found in the database, as the cache keeps it. */
export interface CredentialFill {
  actor: Actor;
  /** When the credential itself stops being valid; null for never. */
  expiresAt: Date | null;
  /** Access tokens: when "last used" was last written (see authenticate.ts). */
  lastUsedAt?: Date | null;
}

export interface CachedCredential {
  readonly actor: Actor;
  /** Access tokens: when "last used" was last written; the caller moves it when it writes. */
  lastUsedAt: number | null;
}

interface Entry extends CachedCredential {
  readonly storedAt: number;
  readonly expiresAt: number | null;
  /** Kept through a clear made while the database was away: served during an outage only. */
  outageOnly: boolean;
}

export const CREDENTIAL_CACHE_MAX_ENTRIES = 10_000;
export const CREDENTIAL_CACHE_MAX_AGE_MS = 30_000;
export const CREDENTIAL_OUTAGE_MAX_AGE_MS = 10 * 60_000;

export class CredentialCache {
  private readonly entries = new Map<string, Entry>();
  private readonly maxEntries: number;
  private readonly maxAgeMs: number;
  private readonly outageMaxAgeMs: number;
  private readonly now: () => number;
  private gen = 0;
  private readonly clearListeners = new Set<() => void>();

  constructor(opts: CredentialCacheOptions = {}) {
    this.maxEntries = Math.max(1, opts.maxEntries ?? CREDENTIAL_CACHE_MAX_ENTRIES);
    this.maxAgeMs = opts.maxAgeMs ?? CREDENTIAL_CACHE_MAX_AGE_MS;
    this.outageMaxAgeMs = Math.max(
      this.maxAgeMs,
      opts.outageMaxAgeMs ?? CREDENTIAL_OUTAGE_MAX_AGE_MS,
    );
    this.now = opts.now ?? (() => Date.now());
  }

  /**
   * Take this before reading the database and hand it to `set`: a clear() in between (a
   * revocation committed while the lookup ran) makes the fill stale, and it is dropped.
   */
  generation(): number {
    return this.gen;
  }

  /** The cached caller, or undefined when unknown, too old or the credential has expired. */
  get(tokenHash: string): CachedCredential | undefined {
    return this.entry(tokenHash, false);
  }

  /** `get` for when the database could not be asked: older entries too (see the class). */
  getDuringOutage(tokenHash: string): CachedCredential | undefined {
    return this.entry(tokenHash, true);
  }

  private entry(tokenHash: string, outage: boolean): CachedCredential | undefined {
    const entry = this.entries.get(tokenHash);
    if (!entry) return undefined;
    const now = this.now();
    const age = now - entry.storedAt;
    // Past the outage age, or expired itself: gone. Merely old: kept for an outage.
    if (age >= this.outageMaxAgeMs || (entry.expiresAt !== null && now >= entry.expiresAt)) {
      this.entries.delete(tokenHash);
      return undefined;
    }
    if (outage) return entry;
    return !entry.outageOnly && age < this.maxAgeMs ? entry : undefined;
  }

  /** Stores a fill unless the cache was cleared since `generation`; says whether it did. */
  set(tokenHash: string, generation: number, fill: CredentialFill): boolean {
    if (generation !== this.gen) return false;
    const now = this.now();
    const expiresAt = fill.expiresAt ? fill.expiresAt.getTime() : null;
    if (expiresAt !== null && now >= expiresAt) return false;
    this.entries.delete(tokenHash);
    while (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
    this.entries.set(tokenHash, {
      // Shared by every request of this caller until the next clear: nothing may change it.
      actor: Object.freeze({ ...fill.actor }),
      lastUsedAt: fill.lastUsedAt ? fill.lastUsedAt.getTime() : null,
      storedAt: now,
      expiresAt,
      outageOnly: false,
    });
    return true;
  }

  /**
   * Forgets every caller, and every lookup still running is not stored either. `databaseAway`:
   * the change that clears was answered "database unavailable", so it most likely changed
   * nothing; callers are then still asked from the database as after any clear, but kept for
   * `getDuringOutage`. Otherwise every failed write of an outage would empty what the outage
   * is served from. (A change that committed just before the database went away is served
   * from here only until the database answers again.)
   */
  clear(opts: { databaseAway?: boolean } = {}): void {
    this.gen++;
    if (opts.databaseAway) {
      for (const entry of this.entries.values()) entry.outageOnly = true;
      return;
    }
    this.entries.clear();
    for (const listener of this.clearListeners) listener();
  }

  /**
   * Called after every clear that may stand for a change (not one made while the database was
   * away): what holds a credential's access open for a long time (an access connection) asks
   * again then. Returns the unsubscribe.
   */
  onClear(listener: () => void): () => void {
    this.clearListeners.add(listener);
    return () => this.clearListeners.delete(listener);
  }

  get size(): number {
    return this.entries.size;
  }
}
