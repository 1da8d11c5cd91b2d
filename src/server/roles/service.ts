import { randomUUID } from 'node:crypto';
import type { AuditLog, AuditWho } from '../audit/service.js';
import type { Db, Tx } from '../db/client.js';
import { conflict, forbidden, isUniqueViolation, notFound } from '../http/errors.js';
import type { AppAbility } from '../rbac/ability.js';
import {
  BUILT_IN_ROLES,
  isBuiltInRole,
  isValidPermission,
  type Permission,
} from '../rbac/permissions.js';
import {
  deleteRole,
  findCustomRoleRow,
  insertRole,
  listCustomRoles,
  lockCustomRole,
  roleHolders,
  updateRole,
  type RoleRow,
} from './queries.js';

export interface RoleDeps {
  db: Db;
  audit: AuditLog;
}

/** The caller as role rules see it: its org and what it may do. */
export interface RoleEditor {
  orgId: string;
  ability: AppAbility;
}

export interface RoleView {
  slug: string;
  name: string;
  description: string;
  builtIn: boolean;
  permissions: Permission[];
  id: string | null;
}

export interface NewRole {
  slug: string;
  name: string;
  description: string;
  permissions: Permission[];
}

export type RoleChange = Partial<Omit<NewRole, 'slug'>>;

const permissionName = (p: Permission) => `${p.subject}:${p.action}`;

function customView(r: RoleRow): RoleView {
  return {
    slug: r.slug,
    name: r.name,
    description: r.description,
    builtIn: false,
    permissions: r.permissions.filter(isValidPermission),
    id: r.id,
  };
}

/**
 * Whoever shapes a role must hold all of its permissions: a role's holders could otherwise be
 * handed powers the editor lacks, or be stripped of powers by someone weaker than them (and
 * then managed — tokens minted — by that weaker someone).
 */
function assertHoldsAll(ability: AppAbility, perms: Permission[], why: string): void {
  const missing = perms.filter((p) => !ability.can(p.action, p.subject));
  if (missing.length) {
    throw forbidden(
      `${why}: it has permissions you do not hold (${missing.map(permissionName).join(', ')}).`,
      {
        missing: missing.map(permissionName),
      },
    );
  }
}

/** Locks a custom role and checks the editor holds all it grants now (a concurrent edit waits). */
async function lockHeld(tx: Tx, editor: RoleEditor, id: string, why: string): Promise<RoleRow> {
  const current = await lockCustomRole(tx, editor.orgId, id);
  if (!current) throw notFound('Role');
  assertHoldsAll(editor.ability, current.permissions.filter(isValidPermission), why);
  return current;
}

export class RoleService {
  constructor(private readonly deps: RoleDeps) {}

  async list(orgId: string): Promise<RoleView[]> {
    const custom = await listCustomRoles(this.deps.db, orgId);
    return [
      ...Object.entries(BUILT_IN_ROLES).map(([slug, r]) => ({
        slug,
        name: r.name,
        description: r.description,
        builtIn: true,
        permissions: [...r.permissions],
        id: null,
      })),
      ...custom.map(customView),
    ];
  }

  async create(editor: RoleEditor, who: AuditWho, input: NewRole): Promise<RoleView> {
    assertHoldsAll(editor.ability, input.permissions, 'You cannot create this role');
    const id = randomUUID();
    try {
      await this.deps.audit.audited(
        who,
        'role.create',
        (tx) => insertRole(tx, { id, orgId: editor.orgId, ...input }),
        { slug: input.slug, permissions: input.permissions.map(permissionName) },
      );
    } catch (err) {
      if (isUniqueViolation(err))
        throw conflict(`A role with slug "${input.slug}" already exists.`);
      throw err;
    }
    return { ...input, builtIn: false, id };
  }

  async update(
    editor: RoleEditor,
    who: AuditWho,
    slug: string,
    change: RoleChange,
  ): Promise<RoleView> {
    const role = await this.find(editor.orgId, slug);
    await this.deps.audit.audited(
      who,
      'role.update',
      async (tx) => {
        await lockHeld(tx, editor, role.id, `You cannot change role "${slug}"`);
        if (change.permissions)
          assertHoldsAll(editor.ability, change.permissions, `You cannot change role "${slug}"`);
        await updateRole(tx, editor.orgId, role.id, change);
      },
      {
        slug: role.slug,
        ...(change.permissions
          ? {
              permissions: change.permissions.map(permissionName),
              previousPermissions: role.permissions.filter(isValidPermission).map(permissionName),
            }
          : {}),
      },
    );
    return customView(await this.find(editor.orgId, slug));
  }

  async remove(editor: RoleEditor, who: AuditWho, slug: string): Promise<void> {
    const role = await this.find(editor.orgId, slug);
    await this.deps.audit.audited(
      who,
      'role.delete',
      async (tx) => {
        await lockHeld(tx, editor, role.id, `You cannot delete role "${slug}"`);
        const holders = await roleHolders(tx, editor.orgId, role.slug);
        if (holders.users.length || holders.identities.length) {
          throw conflict(`Role "${role.slug}" is still assigned; reassign these first.`, holders);
        }
        await deleteRole(tx, editor.orgId, role.id);
      },
      { slug: role.slug },
    );
  }

  private async find(orgId: string, slug: string): Promise<RoleRow> {
    if (isBuiltInRole(slug))
      throw forbidden(`Built-in role "${slug}" cannot be changed or deleted.`);
    const row = await findCustomRoleRow(this.deps.db, orgId, slug);
    if (!row) throw notFound('Role');
    return row;
  }
}
