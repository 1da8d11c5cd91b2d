import type { Role } from '../api/types';

/**
 * A custom role's limit to access targets, as the role editor shows it: one field for the
 * AccessTarget row, applied to its `list` and `connect` (the platform's rule: only those two
 * can be limited; rbac/targets.ts on the server).
 */
export const LIMITABLE = ['list', 'connect'];
const PATTERN = /^[a-z0-9*]+(-[a-z0-9*]+)*$/;
const MAX = 50;

/** Names or globs, separated by commas, spaces or new lines. */
export function parseTargets(text: string): string[] {
  return [...new Set(text.split(/[\s,]+/).filter(Boolean))];
}

/** The first thing the platform would refuse in `text`, checked as the user types. */
export function targetsProblem(text: string): string | undefined {
  const entries = parseTargets(text);
  if (entries.length > MAX) return `At most ${MAX} names or patterns (${entries.length} given).`;
  const bad = entries.find((e) => e.length > 63 || !PATTERN.test(e));
  return bad
    ? `"${bad}" is not a target name or pattern: lowercase letters, digits, single hyphens and "*" (e.g. "orders-*").`
    : undefined;
}

/** The limit an existing role's AccessTarget row has (connect's, else list's), as text. */
export function limitText(role: Role | undefined): string {
  const of = (action: string) =>
    role?.permissions.find((p) => p.subject === 'AccessTarget' && p.action === action)?.targets;
  return (of('connect') ?? of('list') ?? []).join(', ');
}

/** Whether the role's list and connect limits differ (the single field cannot show both). */
export function limitsDiffer(role: Role | undefined): boolean {
  const [list, connect] = LIMITABLE.map((a) =>
    (role?.permissions.find((p) => p.subject === 'AccessTarget' && p.action === a)?.targets ?? [])
      .slice()
      .sort()
      .join(','),
  );
  const held = (a: string) =>
    !!role?.permissions.some((p) => p.subject === 'AccessTarget' && p.action === a);
  return held('list') && held('connect') && list !== connect;
}

/** "orders-*, billing-db" for a limited permission, undefined for an unlimited one. */
export function limitOf(role: Role, subject: string, action: string): string | undefined {
  return role.permissions
    .find((p) => p.subject === subject && p.action === action)
    ?.targets?.join(', ');
}
