import { randomUUID } from 'node:crypto';
import { and, asc, eq } from 'drizzle-orm';
import { z } from 'zod';
import { actorOf, auditActor, auditContext } from '../auth/actor.js';
import type { AppContext } from '../context.js';
import { identities, orgMemberships, roles, users } from '../db/schema.js';
import { conflict, forbidden, isUniqueViolation, notFound } from '../http/errors.js';
import { displayName, slug, type Api } from '../http/schemas.js';
import {
  BUILT_IN_ROLES,
  isBuiltInRole,
  isValidPermission,
  SUBJECT_ACTIONS,
  type Permission,
} from '../rbac/permissions.js';

const permissionList = z
  .array(z.strictObject({ subject: z.string().max(64), action: z.string().max(64) }))
  .max(200, 'at most 200 permissions')
  .superRefine((list, c) => {
    list.forEach((p, i) => {
      if (!isValidPermission(p)) {
        const actions = (SUBJECT_ACTIONS as Record<string, readonly string[]>)[p.subject];
        c.addIssue({
          code: 'custom',
          path: [i],
          message: actions
            ? `action "${p.action}" is not valid for ${p.subject}; use one of: ${actions.join(', ')}`
            : `unknown subject "${p.subject}"; use one of: ${Object.keys(SUBJECT_ACTIONS).join(', ')}`,
        });
      }
    });
  })
  .transform((l) => dedupe(l as Permission[]));

function dedupe(list: Permission[]): Permission[] {
  const seen = new Map(list.map((p) => [`${p.subject}:${p.action}`, p]));
  return [...seen.values()];
}

const roleSlug = slug('slug', 64).refine(
  (s) => !isBuiltInRole(s),
  'slug is reserved for a built-in role',
);
const slugParams = z.object({ slug: z.string().max(64) });

export function roleRoutes(app: Api, ctx: AppContext): void {
  const tags = ['roles'];

  app.get(
    '/api/v1/roles',
    {
      config: { permission: ['read', 'Role'] },
      schema: { tags, summary: 'Built-in and custom roles with their permissions' },
    },
    async (req) => {
      const { orgId } = actorOf(req);
      const custom = await ctx.db
        .select()
        .from(roles)
        .where(eq(roles.orgId, orgId))
        .orderBy(asc(roles.slug));
      return {
        items: [
          ...Object.entries(BUILT_IN_ROLES).map(([s, r]) => ({
            slug: s,
            name: r.name,
            description: r.description,
            builtIn: true,
            permissions: r.permissions,
          })),
          ...custom.map((r) => ({
            slug: r.slug,
            name: r.name,
            description: r.description,
            builtIn: false,
            permissions: r.permissions.filter(isValidPermission),
            id: r.id,
          })),
        ],
        // Lets a role editor offer exactly the valid choices.
        vocabulary: SUBJECT_ACTIONS,
      };
    },
  );

  app.post(
    '/api/v1/roles',
    {
      config: { permission: ['create', 'Role'] },
      schema: {
        tags,
        summary: 'Create a custom role',
        body: z.strictObject({
          slug: roleSlug,
          name: displayName('name'),
          description: z.string().max(500).default(''),
          permissions: permissionList,
        }),
      },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      assertHoldsAll(actor.ability, req.body.permissions);
      const id = randomUUID();
      try {
        await ctx.db.transaction(async (tx) => {
          await tx.insert(roles).values({ id, orgId: actor.orgId, ...req.body });
          await ctx.audit.record(
            auditActor(actor),
            'role.create',
            { slug: req.body.slug, permissions: req.body.permissions.map(permissionName) },
            auditContext(req, actor.orgId),
            tx,
          );
        });
      } catch (err) {
        if (isUniqueViolation(err))
          throw conflict(`A role with slug "${req.body.slug}" already exists.`);
        throw err;
      }
      return reply.code(201).send({ id, ...req.body, builtIn: false });
    },
  );

  app.patch(
    '/api/v1/roles/:slug',
    {
      config: { permission: ['edit', 'Role'] },
      schema: {
        tags,
        summary: 'Change a custom role',
        params: slugParams,
        body: z.strictObject({
          name: displayName('name').optional(),
          description: z.string().max(500).optional(),
          permissions: permissionList.optional(),
        }),
      },
    },
    async (req) => {
      const actor = actorOf(req);
      const role = await findCustomRole(ctx, actor.orgId, req.params.slug);
      if (req.body.permissions) assertHoldsAll(actor.ability, req.body.permissions);
      await ctx.db.transaction(async (tx) => {
        await tx
          .update(roles)
          .set({ ...req.body, updatedAt: new Date() })
          .where(and(eq(roles.orgId, actor.orgId), eq(roles.id, role.id)));
        await ctx.audit.record(
          auditActor(actor),
          'role.update',
          {
            slug: role.slug,
            ...(req.body.permissions
              ? { permissions: req.body.permissions.map(permissionName) }
              : {}),
          },
          auditContext(req, actor.orgId),
          tx,
        );
      });
      return { ...(await findCustomRole(ctx, actor.orgId, role.slug)), builtIn: false };
    },
  );

  app.delete(
    '/api/v1/roles/:slug',
    {
      config: { permission: ['delete', 'Role'] },
      schema: { tags, summary: 'Delete a custom role no one holds', params: slugParams },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      const role = await findCustomRole(ctx, actor.orgId, req.params.slug);
      await ctx.db.transaction(async (tx) => {
        const holders = await tx
          .select({ email: users.email })
          .from(orgMemberships)
          .innerJoin(users, eq(users.id, orgMemberships.userId))
          .where(and(eq(orgMemberships.orgId, actor.orgId), eq(orgMemberships.role, role.slug)))
          .limit(20);
        const ids = await tx
          .select({ name: identities.name })
          .from(identities)
          .where(and(eq(identities.orgId, actor.orgId), eq(identities.role, role.slug)))
          .limit(20);
        if (holders.length || ids.length) {
          throw conflict(`Role "${role.slug}" is still assigned; reassign these first.`, {
            users: holders.map((h) => h.email),
            identities: ids.map((i) => i.name),
          });
        }
        await tx.delete(roles).where(and(eq(roles.orgId, actor.orgId), eq(roles.id, role.id)));
        await ctx.audit.record(
          auditActor(actor),
          'role.delete',
          { slug: role.slug },
          auditContext(req, actor.orgId),
          tx,
        );
      });
      return reply.code(204).send();
    },
  );
}

const permissionName = (p: Permission) => `${p.subject}:${p.action}`;

function assertHoldsAll(
  ability: { can: (a: Permission['action'], s: Permission['subject']) => boolean },
  perms: Permission[],
): void {
  const missing = perms.filter((p) => !ability.can(p.action, p.subject));
  if (missing.length) {
    throw forbidden('A role cannot grant permissions you do not hold yourself.', {
      missing: missing.map(permissionName),
    });
  }
}

async function findCustomRole(ctx: AppContext, orgId: string, s: string) {
  if (isBuiltInRole(s)) throw forbidden(`Built-in role "${s}" cannot be changed or deleted.`);
  const [row] = await ctx.db
    .select()
    .from(roles)
    .where(and(eq(roles.orgId, orgId), eq(roles.slug, s)));
  if (!row) throw notFound('Role');
  return row;
}
