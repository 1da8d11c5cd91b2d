/**
 * Per-target limits of `AccessTarget` permissions: a custom role's `AccessTarget:list` or
 * `AccessTarget:connect` row may carry `targets`, names or globs (`orders-*`). Pure; ability.ts
 * turns a limit into a CASL condition, grant.ts asks whether one limit covers another.
 */

/** The actions a `targets` limit may narrow. */
export const LIMITABLE_ACTIONS: readonly string[] = ['list', 'connect'];
export const MAX_TARGET_PATTERNS = 50;

/**
 * A target name with `*` standing for any run of characters (hyphens included): the same
 * alphabet as names, so a pattern never needs escaping in a RegExp or a SQL LIKE.
 */
const PATTERN = /^[a-z0-9*]+(-[a-z0-9*]+)*$/;
const PATTERN_MAX = 63;

/** Why `entry` is not a valid target pattern, or null when it is. */
export function patternProblem(entry: unknown): string | null {
  if (typeof entry !== 'string') return 'must be a string';
  if (entry.length === 0) return 'must not be empty';
  if (entry.length > PATTERN_MAX) return `must be at most ${PATTERN_MAX} characters`;
  if (!PATTERN.test(entry))
    return 'must be an access target name or a glob with "*": lowercase letters, digits, single hyphens and "*" (e.g. "orders-db" or "orders-*")';
  return null;
}

/** One RegExp source matching exactly the names any of `patterns` matches. */
export function patternsSource(patterns: readonly string[]): string {
  // Nothing to escape: the pattern alphabet has no RegExp metacharacter but `*` (see PATTERN).
  return `^(?:${patterns.map((p) => p.split('*').join('.*')).join('|')})$`;
}

export function matchesAny(patterns: readonly string[], name: string): boolean {
  return patterns.length > 0 && new RegExp(patternsSource(patterns)).test(name);
}

/** A SQL LIKE pattern for a target pattern (names hold neither `%`, `_` nor `\`). */
export const likePattern = (pattern: string): string => pattern.split('*').join('%');

/**
 * Whether holding `held` gives at least what `wanted` grants, decided without glob algebra:
 * an identical entry, a held `*` (it matches every name), or an exact name a held pattern
 * matches. So `orders-*` covers `orders-db` and `orders-*`, but not `orders-eu-*` (a subset,
 * refused by this rule — the granter can still list names or hold that pattern itself).
 */
export function coversAll(held: readonly string[], wanted: readonly string[]): boolean {
  return wanted.every(
    (w) => held.includes(w) || held.includes('*') || (!w.includes('*') && matchesAny(held, w)),
  );
}

/** The entries of `wanted` that `held` does not cover (see coversAll). */
export function uncovered(held: readonly string[], wanted: readonly string[]): string[] {
  return wanted.filter((w) => !coversAll(held, [w]));
}
