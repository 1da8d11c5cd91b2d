import { and, eq } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { roles } from '../db/schema.js';
import {
  BUILT_IN_ROLES,
  isBuiltInRole,
  isValidPermission,
  type Permission,
} from './permissions.js';

/** The permissions a role slug grants in an org; unknown slugs grant nothing. */
export async function permissionsForRole(
  db: Db,
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

export async function roleExists(db: Db, orgId: string, slug: string): Promise<boolean> {
  if (isBuiltInRole(slug)) return true;
  const [row] = await db
    .select({ id: roles.id })
    .from(roles)
    .where(and(eq(roles.orgId, orgId), eq(roles.slug, slug)));
  return !!row;
}
