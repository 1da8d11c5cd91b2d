import { randomUUID } from 'node:crypto';
import type { AuditLog, AuditWho } from '../audit/service.js';
import type { Db, Tx } from '../db/client.js';
import { conflict, forbidden, isUniqueViolation, notFound, unprocessable } from '../http/errors.js';
import type { AppAbility } from '../rbac/ability.js';
import { notHeld, permissionName } from '../rbac/grant.js';
import {
  BUILT_IN_ROLES,
  isBuiltInRole,
  isValidPermission,
  type Permission,
} from '../rbac/permissions.js';
import { LIMITABLE_ACTIONS, MAX_TARGET_PATTERNS, patternProblem } from '../rbac/targets.js';
import {
  deleteRole,
  findCustomRoleRow,
  insertRole,
  countCustomRoles,
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

/** Custom roles per organization; GET /api/v1/roles lists them whole, with no paging. */
export const MAX_CUSTOM_ROLES = 200;
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

/** A 422 about one field, in the shape of the API's validation errors (forms show it there). */
function fieldRefusal(path: (string | number)[], message: string, extra: object = {}) {
  return unprocessable(message, {
    ...extra,
    fields: [{ field: ['body', ...path].join('.'), message }],
  });
}

/**
 * Checks `targets` limits (a 422 naming the offending entry) and folds rows of one action into
 * one: CASL grants the union of a subject's rules, so an unlimited row makes the action
 * unlimited and limited rows add up.
 */
export function normalizePermissions(list: readonly Permission[]): Permission[] {
  list.forEach((p, i) => {
    if (p.targets === undefined) return;
    const field = `permissions[${i}].targets`;
    const refuse = (message: string) => fieldRefusal(['permissions', i, 'targets'], message);
    if (p.subject !== 'AccessTarget')
      throw refuse(
        `${field}: only AccessTarget permissions can be limited to targets, not ${p.subject}:${p.action}.`,
      );
    if (!LIMITABLE_ACTIONS.includes(p.action))
      throw refuse(
        `${field}: targets limits AccessTarget:list and AccessTarget:connect only, not AccessTarget:${p.action}.`,
      );
    if (p.targets.length === 0)
      throw refuse(`${field} is empty: omit targets to allow every target.`);
    if (p.targets.length > MAX_TARGET_PATTERNS)
      throw refuse(`${field}: at most ${MAX_TARGET_PATTERNS} entries (${p.targets.length} given).`);
    p.targets.forEach((entry, j) => {
      const problem = patternProblem(entry);
      if (problem)
        throw fieldRefusal(
          ['permissions', i, 'targets', j],
          `${field}[${j}] "${entry}" ${problem}.`,
          { entry },
        );
    });
  });
  const merged = new Map<string, Permission>();
  for (const p of list) {
    const key = `${p.subject}:${p.action}`;
    const before = merged.get(key);
    if (!p.targets || (before && !before.targets)) {
      merged.set(key, { subject: p.subject, action: p.action });
    } else {
      const targets = [...new Set([...(before?.targets ?? []), ...p.targets])];
      merged.set(key, { subject: p.subject, action: p.action, targets });
    }
  }
  for (const p of merged.values()) {
    if (p.targets && p.targets.length > MAX_TARGET_PATTERNS)
      throw fieldRefusal(
        ['permissions'],
        `${permissionName({ subject: p.subject, action: p.action })}: at most ${MAX_TARGET_PATTERNS} targets in all (${p.targets.length} given across its rows).`,
      );
  }
  return [...merged.values()];
}

function customView(r: RoleRow): RoleView {
  return {
    slug: r.slug,
    name: r.name,
    description: r.description,
    builtIn: false,
    permissions: r.permissions
      .filter(isValidPermission)
      .map((p): Permission =>
        p.targets
          ? { subject: p.subject, action: p.action, targets: p.targets }
          : { subject: p.subject, action: p.action },
      ),
    id: r.id,
  };
}

/**
 * Whoever shapes a role must hold all of its permissions: a role's holders could otherwise be
 * handed powers the editor lacks, or be stripped of powers by someone weaker than them (and
 * then managed — tokens minted — by that weaker someone).
 */
function assertHoldsAll(ability: AppAbility, perms: Permission[], why: string): void {
  const missing = notHeld(ability, perms);
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

  async create(editor: RoleEditor, who: AuditWho, given: NewRole): Promise<RoleView> {
    const input = { ...given, permissions: normalizePermissions(given.permissions) };
    assertHoldsAll(editor.ability, input.permissions, 'You cannot create this role');
    const id = randomUUID();
    try {
      await this.deps.audit.audited(
        who,
        'role.create',
        async (tx) => {
          // Roles are listed whole (the editor and every role picker need them all): bounded.
          if ((await countCustomRoles(tx, editor.orgId)) >= MAX_CUSTOM_ROLES)
            throw conflict(
              `An organization has at most ${MAX_CUSTOM_ROLES} custom roles: delete one you no longer use first.`,
            );
          await insertRole(tx, { id, orgId: editor.orgId, ...input });
        },
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
    given: RoleChange,
  ): Promise<RoleView> {
    const change: RoleChange = given.permissions
      ? { ...given, permissions: normalizePermissions(given.permissions) }
      : given;
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
        if (holders.users.length || holders.identities.length || holders.invitations.length) {
          throw conflict(
            `Role "${role.slug}" is still assigned; reassign these first` +
              (holders.invitations.length ? ' (or revoke the pending invitations).' : '.'),
            holders,
          );
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
