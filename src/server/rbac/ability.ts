import {
  createMongoAbility,
  subject as forSubject,
  type ForcedSubject,
  type MongoAbility,
  type RawRuleOf,
} from '@casl/ability';
import type { Action, Permission, Subject } from './permissions.js';
import { LIMITABLE_ACTIONS, patternProblem, patternsSource } from './targets.js';

/** One access target, as a `targets` limit judges it (by name). */
export type TargetSubject = ForcedSubject<'AccessTarget'> & { name: string };
export type AppAbility = MongoAbility<[Action, Subject | TargetSubject]>;

/** The permissions each ability was built from: grant checks and list queries need the limits. */
const sources = new WeakMap<AppAbility, readonly Permission[]>();

/**
 * Whether a stored row's limit is one this code understands. A row that is not (targets on
 * another subject or action, an empty list, a malformed entry — none of which the API stores)
 * grants nothing rather than everything.
 */
function usable(p: Permission): boolean {
  if (p.targets === undefined) return true;
  return (
    p.subject === 'AccessTarget' &&
    LIMITABLE_ACTIONS.includes(p.action) &&
    Array.isArray(p.targets) &&
    p.targets.length > 0 &&
    p.targets.every((t) => patternProblem(t) === null)
  );
}

/**
 * A limit is a CASL condition on the target's name, so one `can('connect', targetSubject(t))`
 * answers everywhere, while `can('connect', 'AccessTarget')` keeps meaning "may connect to some
 * target" (CASL ignores conditions for a subject type): the auth hook needs no change.
 */
export function buildAbility(permissions: readonly Permission[]): AppAbility {
  const kept = permissions.filter(usable);
  const ability = createMongoAbility<[Action, Subject | TargetSubject]>(
    kept.map((p): RawRuleOf<AppAbility> =>
      p.targets
        ? {
            action: p.action,
            subject: p.subject,
            conditions: { name: { $regex: patternsSource(p.targets) } },
          }
        : { action: p.action, subject: p.subject },
    ),
  );
  sources.set(ability, kept);
  return ability;
}

export function targetSubject(target: { name: string }): TargetSubject {
  return forSubject('AccessTarget', { name: target.name });
}

/**
 * Which access targets `action` reaches: `'all'`, or the name patterns of its limits (empty
 * when the ability does not grant the action at all).
 */
export function targetScope(ability: AppAbility, action: Action): 'all' | string[] {
  const rows = (sources.get(ability) ?? []).filter(
    (p) => p.subject === 'AccessTarget' && p.action === action,
  );
  if (rows.some((p) => !p.targets)) return 'all';
  return [...new Set(rows.flatMap((p) => p.targets ?? []))];
}
