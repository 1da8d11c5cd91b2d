import type { Actor } from '../auth/actor.js';
import type { Db } from '../db/client.js';
import { forbidden, unprocessable } from '../http/errors.js';
import { permissionsForRole, roleExists } from './roles-resolver.js';

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
  const missing = (await permissionsForRole(db, actor.orgId, role)).filter(
    (p) => !actor.ability.can(p.action, p.subject),
  );
  if (missing.length > 0) {
    throw forbidden(`You cannot grant role "${role}": it has permissions you do not hold.`, {
      missing: missing.map((p) => `${p.subject}:${p.action}`),
    });
  }
}

/**
 * Changing or removing a user or identity, or minting credentials for it, needs the standing
 * to grant its current role: otherwise anyone able to edit identities could mint a token for
 * an admin identity and act as admin, or a people manager could demote the admins.
 */
export async function assertCanManageHolder(
  db: Db,
  actor: Actor,
  holder: { role: string },
  what: 'user' | 'identity',
): Promise<void> {
  const missing = (await permissionsForRole(db, actor.orgId, holder.role)).filter(
    (p) => !actor.ability.can(p.action, p.subject),
  );
  if (missing.length > 0) {
    throw forbidden(
      `You cannot manage this ${what}: its role "${holder.role}" has permissions you do not hold.`,
      {
        missing: missing.map((p) => `${p.subject}:${p.action}`),
      },
    );
  }
}
