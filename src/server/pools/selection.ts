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

/** Picks by weight: a member with weight 200 is drawn twice as often as one with 100. */
function weightedDraw(members: readonly Candidate[], random: () => number): Candidate {
  const total = members.reduce((sum, m) => sum + m.weight, 0);
  let x = random() * total;
  for (const m of members) {
    x -= m.weight;
    if (x < 0) return m;
  }
  return members[members.length - 1] as Candidate;
}

/** Load per unit of weight: a heavier member is "less busy" at the same stream count. */
const load = (c: Candidate) => c.outstanding / c.weight;

export function selectMember(members: readonly Candidate[], opts: SelectOptions): Selection {
  const random = opts.random ?? Math.random;
  if (members.length === 0)
    return { ok: false, reason: 'empty', message: 'the pool has no members' };

  const healthy = members.filter((m) => m.healthy && m.weight > 0);
  if (healthy.length === 0) {
    const why = members.map((m) => `${m.name}: ${m.unhealthyReason ?? 'not healthy'}`).join('; ');
    return { ok: false, reason: 'none_healthy', message: `no healthy member (${why})` };
  }

  const untried = opts.exclude ? healthy.filter((m) => !opts.exclude?.has(m.gatewayId)) : healthy;
  if (untried.length === 0) {
    return { ok: false, reason: 'all_tried', message: 'every healthy member was already tried' };
  }

  const matching = untried.filter((m) => matches(m, opts.filter));
  if (matching.length === 0) {
    const wanted =
      opts.filter?.description ??
      Object.entries(opts.filter?.labels ?? {})
        .map(([k, v]) => `${k}=${v}`)
        .join(', ');
    return { ok: false, reason: 'no_match', message: `no healthy member matches ${wanted}` };
  }

  // A member that just failed is a last resort, not excluded: if all failed, still try one.
  const trusted = matching.filter((m) => !m.suspectUntil || m.suspectUntil <= opts.now);
  const usable = trusted.length > 0 ? trusted : matching;

  const tier = Math.min(...usable.map((m) => m.priority));
  const inTier = usable.filter((m) => m.priority === tier);
  if (inTier.length === 1) return { ok: true, member: inTier[0] as Candidate };

  // Power of two choices: near-best balance without herding every request onto one member.
  // On a tie the first draw wins: it is itself a random, weight-proportional pick, so idle
  // members receive traffic exactly in proportion to their weights.
  const a = weightedDraw(inTier, random);
  const b = weightedDraw(inTier, random);
  return { ok: true, member: load(b) < load(a) ? b : a };
}
