import type { Actor } from '../auth/actor.js';
import type { Db, Tx } from '../db/client.js';
import { forbidden, unprocessable } from '../http/errors.js';
import { targetScope, type AppAbility } from './ability.js';
import type { Permission } from './permissions.js';
import { permissionsForRole, roleExists } from './roles-resolver.js';
import { uncovered } from './targets.js';

/** `AccessTarget:connect`, or `AccessTarget:connect [orders-*, billing-db]` for a limited one. */
export const permissionName = (p: Permission): string =>
  `${p.subject}:${p.action}${p.targets ? ` [${p.targets.join(', ')}]` : ''}`;

/**
 * What of `wanted` the ability does not give: each such permission, a limited one narrowed to
 * the targets not covered. A limit is weaker than none: a holder of `AccessTarget:connect` on
 * `orders-*` gives neither the unlimited permission nor `*`, only what targets.ts `coversAll`
 * proves it holds.
 */
export function notHeld(ability: AppAbility, wanted: readonly Permission[]): Permission[] {
  return wanted.flatMap((p): Permission[] => {
    if (!ability.can(p.action, p.subject)) return [p];
    if (p.subject !== 'AccessTarget') return [];
    const scope = targetScope(ability, p.action);
    if (scope === 'all') return [];
    if (!p.targets) return [p];
    const missing = uncovered(scope, p.targets);
    return missing.length ? [{ ...p, targets: missing }] : [];
  });
}

/**
 * A caller may hand out only a role whose permissions it holds itself; otherwise anyone able
 * to add members or identities could mint an admin.
 */
export async function assertCanGrantRole(db: Db, actor: Actor, role: string): Promise<void> {
  if (!(await roleExists(db, actor.orgId, role))) {
    throw unprocessable(
      `Role "${role}" does not exist: use admin, member, viewer or a custom role's slug.`,
    );
  }
  const missing = notHeld(actor.ability, await permissionsForRole(db, actor.orgId, role));
  if (missing.length > 0) {
    throw forbidden(`You cannot grant role "${role}": it has permissions you do not hold.`, {
      missing: missing.map(permissionName),
    });
  }
}

/**
 * Changing or removing a user or identity, or minting credentials for it, needs the standing
 * to grant its current role: otherwise anyone able to edit identities could mint a token for
 * an admin identity and act as admin, or a people manager could demote the admins.
 */
export async function assertCanManageHolder(
  db: Db | Tx,
  actor: Actor,
  holder: { role: string },
  what: 'user' | 'identity' | 'invitation',
): Promise<void> {
  const missing = notHeld(actor.ability, await permissionsForRole(db, actor.orgId, holder.role));
  if (missing.length > 0) {
    throw forbidden(
      `You cannot manage this ${what}: its role "${holder.role}" has permissions you do not hold.`,
      {
        missing: missing.map(permissionName),
      },
    );
  }
}
