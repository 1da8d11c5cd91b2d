import { z } from 'zod';
import { actorOf, whoOf } from '../auth/actor.js';
import type { AppContext } from '../context.js';
import { displayName, noContent, slug, type Api } from '../http/schemas.js';
import {
  actionsOf,
  isBuiltInRole,
  isValidPermission,
  SUBJECT_ACTIONS,
  type Permission,
} from '../rbac/permissions.js';
import { RoleService } from './service.js';

const TARGETS_HELP =
  'AccessTarget list and connect only: the access targets it is limited to, names or globs with "*" (e.g. "orders-*"), 1-50 entries; omit for every target. Other subjects, actions or entries are refused with 422 naming the entry.';

const permissionList = z
  .array(
    z.strictObject({
      subject: z.string().max(64),
      action: z.string().max(64),
      // Shape only: the rules are the service's (a 422 naming the entry, see normalizePermissions).
      targets: z.array(z.string().max(200)).max(200).optional().describe(TARGETS_HELP),
    }),
  )
  .max(200, 'at most 200 permissions')
  .superRefine((list, c) => {
    list.forEach((p, i) => {
      if (!isValidPermission(p)) {
        const actions = actionsOf(p.subject);
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
  .transform((l) => l as Permission[]);

const roleSlug = slug('slug', 64).refine(
  (s) => !isBuiltInRole(s),
  'slug is reserved for a built-in role',
);
const slugParams = z.object({ slug: z.string().max(64) });

const permissionView = z.object({
  subject: z.string(),
  action: z.string(),
  targets: z
    .array(z.string())
    .optional()
    .describe('The access targets (names or globs) it is limited to; absent for every target'),
});
const roleView = z.object({
  slug: z.string(),
  name: z.string(),
  description: z.string(),
  builtIn: z.boolean(),
  permissions: z.array(permissionView),
  id: z.string().nullable().describe('null for built-in roles'),
});

const ROLES_WHOLE =
  'GET /api/v1/roles takes no query parameters: it lists every role at once (at most 200 custom roles), with no limit or cursor.';

export function roleRoutes(app: Api, ctx: AppContext): void {
  const tags = ['roles'];
  const roles = new RoleService({ db: ctx.db, audit: ctx.audit });

  app.get(
    '/api/v1/roles',
    {
      config: { permission: ['read', 'Role'] },
      schema: {
        tags,
        operationId: 'listRoles',
        summary:
          'Built-in and custom roles with their permissions, all of them (at most 200 custom roles; no paging)',
        querystring: z.strictObject({}, { error: ROLES_WHOLE }),
        response: {
          200: z.object({
            items: z.array(roleView),
            // Lets a role editor offer exactly the valid choices.
            vocabulary: z.record(z.string(), z.array(z.string()).readonly()),
          }),
        },
      },
    },
    async (req) => ({ items: await roles.list(actorOf(req).orgId), vocabulary: SUBJECT_ACTIONS }),
  );

  app.post(
    '/api/v1/roles',
    {
      config: { permission: ['create', 'Role'] },
      schema: {
        tags,
        operationId: 'createRole',
        summary: 'Create a custom role (only of permissions you hold)',
        body: z.strictObject({
          slug: roleSlug,
          name: displayName('name'),
          description: z.string().max(500).default(''),
          permissions: permissionList,
        }),
        response: { 201: roleView },
      },
    },
    async (req, reply) =>
      reply.code(201).send(await roles.create(actorOf(req), whoOf(req), req.body)),
  );

  app.patch(
    '/api/v1/roles/:slug',
    {
      config: { permission: ['edit', 'Role'] },
      schema: {
        tags,
        operationId: 'updateRole',
        summary: 'Change a custom role (you must hold its permissions before and after)',
        params: slugParams,
        body: z.strictObject({
          name: displayName('name').optional(),
          description: z.string().max(500).optional(),
          permissions: permissionList.optional(),
        }),
        response: { 200: roleView },
      },
    },
    async (req) => roles.update(actorOf(req), whoOf(req), req.params.slug, req.body),
  );

  app.delete(
    '/api/v1/roles/:slug',
    {
      config: { permission: ['delete', 'Role'] },
      schema: {
        tags,
        operationId: 'deleteRole',
        summary: 'Delete a custom role no one holds (you must hold its permissions)',
        params: slugParams,
        response: { 204: noContent },
      },
    },
    async (req, reply) => {
      await roles.remove(actorOf(req), whoOf(req), req.params.slug);
      return reply.code(204).send(null);
    },
  );
}
