/**
 * Choosing the pool member that serves a request (DESIGN §5). Pure: the caller passes the
 * members with their live state, a clock reading and a random source, so every rule is
 * unit-testable without a server.
 */
import type { MemberHealth } from '../gateways/health.js';

export interface Candidate {
  gatewayId: string;
  name: string;
  /** Relative share of traffic among equals (membership weight, > 0). */
  weight: number;
  /** Priority tier: lower tiers are used first; higher tiers only when no lower one is usable. */
  priority: number;
  /** Health per DESIGN §4 is `healthy` and the pool's health-check target (if any) is reachable. */
  healthy: boolean;
  /** Why a member is not healthy, shown to people when nothing can be selected. */
  unhealthyReason?: string;
  /** Streams the gateway reported as open plus streams opened here since. */
  outstanding: number;
  labels: Record<string, string>;
  /** Epoch ms until which a recent transport failure makes the member a last resort. */
  suspectUntil?: number;
  /** Its tunnel has gone quiet (tunnel/liveness.ts): a last resort, like a suspect. */
  quiet?: boolean;
  /** The member's health as gateways/health.ts computes it (written by the runtime's refresh). */
  health?: MemberHealth;
  /** Why a healthy member is a last resort; only filled where explained (not per request). */
  lastResort?: string | null;
}

export interface SelectionFilter {
  /** Every given label must match exactly. */
  labels?: Record<string, string>;
  /** Text for the "none matched" message, e.g. "members labelled region=eu". */
  description?: string;
}

export interface SelectOptions {
  exclude?: ReadonlySet<string>;
  filter?: SelectionFilter;
  now: number;
  random?: () => number;
}

export type Selection =
  | { ok: true; member: Candidate }
  | { ok: false; reason: 'empty' | 'none_healthy' | 'all_tried' | 'no_match'; message: string };

function matches(c: Candidate, filter: SelectionFilter | undefined): boolean {
  if (!filter?.labels) return true;
  return Object.entries(filter.labels).every(([k, v]) => c.labels[k] === v);
}

/** Neither quiet nor recently failed: preferred over members that are. */
export const trusted = (c: Candidate, now: number): boolean =>
  !c.quiet && (c.suspectUntil === undefined || c.suspectUntil <= now);

/** Load per unit of weight: a heavier member is "less busy" at the same stream count. */
const load = (c: Candidate) => c.outstanding / c.weight;

const UNUSABLE = 0;
const LAST_RESORT = 1;
const TRUSTED = 2;
/**
 * Per member of the current call: unusable, a last resort (suspect or quiet) or trusted.
 * Scratch space reused across calls (selection is synchronous, so calls never overlap).
 */
let verdicts = new Uint8Array(64);

/**
 * Runs on every request, so it allocates nothing per member: three plain indexed passes (a
 * verdict per member, the tier's total weight, then both weighted draws in one walk), which keeps a
 * selection among 1,000 members in the microseconds and free of garbage-collection spikes
 * (bench/selection).
 */
export function selectMember(members: readonly Candidate[], opts: SelectOptions): Selection {
  const random = opts.random ?? Math.random;
  const now = opts.now;
  if (members.length === 0)
    return { ok: false, reason: 'empty', message: 'the pool has no members: add gateways to it' };
  // Exclusions are the few members already tried: scanning a short array beats hashing.
  const excluded = opts.exclude && opts.exclude.size > 0 ? [...opts.exclude] : undefined;
  const filter = opts.filter?.labels ? opts.filter : undefined;
  if (verdicts.length < members.length) verdicts = new Uint8Array(members.length * 2);

  // Pass 1: is anything usable, and which priority tier serves.
  let anyHealthy = false;
  let anyUntried = false;
  let anyMatching = false;
  let trustedTier = Infinity;
  let anyTier = Infinity;
  for (let i = 0; i < members.length; i++) {
    const m = members[i] as Candidate;
    verdicts[i] = UNUSABLE;
    if (!m.healthy || m.weight <= 0) continue;
    anyHealthy = true;
    if (excluded !== undefined && excluded.includes(m.gatewayId)) continue;
    anyUntried = true;
    if (filter !== undefined && !matches(m, filter)) continue;
    anyMatching = true;
    const isTrusted = trusted(m, now);
    verdicts[i] = isTrusted ? TRUSTED : LAST_RESORT;
    if (m.priority < anyTier) anyTier = m.priority;
    if (isTrusted && m.priority < trustedTier) trustedTier = m.priority;
  }
  if (!anyHealthy) {
    const why = members.map((m) => `${m.name}: ${m.unhealthyReason ?? 'not healthy'}`).join('; ');
    return { ok: false, reason: 'none_healthy', message: `no healthy member (${why})` };
  }
  if (!anyUntried)
    return { ok: false, reason: 'all_tried', message: 'every healthy member was already tried' };
  if (!anyMatching) {
    const wanted =
      opts.filter?.description ??
      Object.entries(opts.filter?.labels ?? {})
        .map(([k, v]) => `${k}=${v}`)
        .join(', ');
    return { ok: false, reason: 'no_match', message: `no healthy member matches ${wanted}` };
  }

  // A member that just failed or went quiet is a last resort, not excluded: if all did, still
  // try one.
  const useSuspects = trustedTier === Infinity;
  const tier = useSuspects ? anyTier : trustedTier;
  const least = useSuspects ? LAST_RESORT : TRUSTED;

  // Pass 2: the tier's members by weight.
  let total = 0;
  let count = 0;
  let only: Candidate | undefined;
  for (let i = 0; i < members.length; i++) {
    const m = members[i] as Candidate;
    if ((verdicts[i] as number) < least || m.priority !== tier) continue;
    total += m.weight;
    count += 1;
    only = m;
  }
  if (count === 1) return { ok: true, member: only as Candidate };

  // Pass 3: power of two choices, each drawn in proportion to weight — near-best balance
  // without herding every request onto one member. On a tie the first draw wins: it is itself
  // a random, weight-proportional pick, so idle members get traffic exactly by weight.
  const x = random() * total;
  const y = random() * total;
  let a: Candidate | undefined;
  let b: Candidate | undefined;
  let cumulative = 0;
  let last: Candidate | undefined;
  for (let i = 0; i < members.length && (a === undefined || b === undefined); i++) {
    const m = members[i] as Candidate;
    if ((verdicts[i] as number) < least || m.priority !== tier) continue;
    cumulative += m.weight;
    last = m;
    if (a === undefined && x < cumulative) a = m;
    if (b === undefined && y < cumulative) b = m;
  }
  // Floating-point leftovers fall to the last member.
  a ??= last as Candidate;
  b ??= last as Candidate;
  return { ok: true, member: load(b) < load(a) ? b : a };
}
