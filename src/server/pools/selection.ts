/**
 * Choosing the pool member that serves a request (DESIGN §5). Pure: the caller passes the
 * members with their live state, a clock reading and a random source, so every rule is
 * unit-testable without a server.
 */

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
const trusted = (c: Candidate, now: number) =>
  !c.quiet && (c.suspectUntil === undefined || c.suspectUntil <= now);

/** Load per unit of weight: a heavier member is "less busy" at the same stream count. */
const load = (c: Candidate) => c.outstanding / c.weight;

/** The member at a uniform point `u` of the cumulative weights. */
function weightedDraw(members: Candidate[], total: number, u: number): Candidate {
  let x = u * total;
  for (let i = 0; i < members.length; i++) {
    const m = members[i] as Candidate;
    x -= m.weight;
    if (x < 0) return m;
  }
  // Floating-point leftovers fall to the last member.
  return members[members.length - 1] as Candidate;
}

/**
 * Runs on every request: plain indexed loops, at most two small arrays, so a selection among
 * 1,000 members costs a few microseconds (bench/selection).
 */
export function selectMember(members: readonly Candidate[], opts: SelectOptions): Selection {
  const random = opts.random ?? Math.random;
  const now = opts.now;
  if (members.length === 0)
    return { ok: false, reason: 'empty', message: 'the pool has no members' };
  // Exclusions are the few members already tried: scanning a short array beats hashing.
  const excluded = opts.exclude && opts.exclude.size > 0 ? [...opts.exclude] : undefined;
  const filter = opts.filter?.labels ? opts.filter : undefined;

  let anyHealthy = false;
  let anyUntried = false;
  let trustedTier = Infinity;
  let anyTier = Infinity;
  const matching: Candidate[] = [];
  for (let i = 0; i < members.length; i++) {
    const m = members[i] as Candidate;
    if (!m.healthy || m.weight <= 0) continue;
    anyHealthy = true;
    if (excluded !== undefined && excluded.includes(m.gatewayId)) continue;
    anyUntried = true;
    if (filter !== undefined && !matches(m, filter)) continue;
    matching.push(m);
    if (m.priority < anyTier) anyTier = m.priority;
    if (m.priority < trustedTier && trusted(m, now)) trustedTier = m.priority;
  }
  if (!anyHealthy) {
    const why = members.map((m) => `${m.name}: ${m.unhealthyReason ?? 'not healthy'}`).join('; ');
    return { ok: false, reason: 'none_healthy', message: `no healthy member (${why})` };
  }
  if (!anyUntried)
    return { ok: false, reason: 'all_tried', message: 'every healthy member was already tried' };
  if (matching.length === 0) {
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
  let total = 0;
  let tierMembers: Candidate[] | undefined;
  for (let i = 0; i < matching.length; i++) {
    const m = matching[i] as Candidate;
    const usable = m.priority === tier && (useSuspects || trusted(m, now));
    if (usable) {
      total += m.weight;
      tierMembers?.push(m);
    } else if (!tierMembers) {
      // The common case (one tier, nobody suspect) never copies: `matching` is the tier.
      tierMembers = matching
        .slice(0, i)
        .filter((x) => x.priority === tier && (useSuspects || trusted(x, now)));
    }
  }
  const pool = tierMembers ?? matching;
  if (pool.length === 1) return { ok: true, member: pool[0] as Candidate };

  // Power of two choices, each drawn in proportion to weight: near-best balance without
  // herding every request onto one member. On a tie the first draw wins: it is itself a
  // random, weight-proportional pick, so idle members get traffic exactly by weight.
  const a = weightedDraw(pool, total, random());
  const b = weightedDraw(pool, total, random());
  return { ok: true, member: load(b) < load(a) ? b : a };
}
