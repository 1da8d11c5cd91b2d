import { and, eq } from 'drizzle-orm';
import type { Db, Tx } from '../db/client.js';
import { unprocessable } from '../http/errors.js';
import { roles } from '../db/schema.js';
import {
  BUILT_IN_ROLES,
  isBuiltInRole,
  isValidPermission,
  type Permission,
} from './permissions.js';

/** The permissions a role slug grants in an org; unknown slugs grant nothing. */
export async function permissionsForRole(
  db: Db | Tx,
  orgId: string,
  slug: string,
): Promise<Permission[]> {
  if (isBuiltInRole(slug)) return [...BUILT_IN_ROLES[slug].permissions];
  const [row] = await db
    .select({ permissions: roles.permissions })
    .from(roles)
    .where(and(eq(roles.orgId, orgId), eq(roles.slug, slug)));
  return (row?.permissions ?? []).filter(isValidPermission);
}

/** A custom role's display name (what people chose to call it), or undefined. */
export async function roleDisplayName(
  db: Db,
  orgId: string,
  slug: string,
): Promise<string | undefined> {
  const [row] = await db
    .select({ name: roles.name })
    .from(roles)
    .where(and(eq(roles.orgId, orgId), eq(roles.slug, slug)));
  return row?.name;
}

export async function roleExists(db: Db, orgId: string, slug: string): Promise<boolean> {
  if (isBuiltInRole(slug)) return true;
  const [row] = await db
    .select({ id: roles.id })
    .from(roles)
    .where(and(eq(roles.orgId, orgId), eq(roles.slug, slug)));
  return !!row;
}

/**
 * Inside the transaction that assigns `slug`: holds the role row until commit (FOR SHARE), so a
 * concurrent delete waits and then sees the new holder (and refuses), or has already deleted it
 * and this assignment is refused here — never a holder of a role that no longer exists.
 */
export async function holdRole(tx: Tx, orgId: string, slug: string): Promise<void> {
  if (isBuiltInRole(slug)) return;
  const [row] = await tx
    .select({ id: roles.id })
    .from(roles)
    .where(and(eq(roles.orgId, orgId), eq(roles.slug, slug)))
    .for('share');
  if (!row)
    throw unprocessable(
      `Role "${slug}" does not exist: use admin, member, viewer or a custom role's slug.`,
    );
}
