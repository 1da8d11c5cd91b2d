import { randomUUID } from 'node:crypto';
import { and, asc, count, eq, ne } from 'drizzle-orm';
import { z } from 'zod';
import { actorOf, auditActor, auditContext } from '../auth/actor.js';
import { hashPassword } from '../auth/passwords.js';
import type { AppContext } from '../context.js';
import type { Tx } from '../db/client.js';
import { orgMemberships, sessions, users } from '../db/schema.js';
import { conflict, isUniqueViolation, notFound } from '../http/errors.js';
import {
  afterCursor,
  displayName,
  email,
  idParams,
  pageOf,
  pageQuery,
  password,
  slug,
  type Api,
} from '../http/schemas.js';
import { assertCanGrantRole, assertCanManageHolder } from '../rbac/grant.js';

const roleField = slug('role', 64);

const memberColumns = {
  id: users.id,
  email: users.email,
  name: users.name,
  role: orgMemberships.role,
  createdAt: orgMemberships.createdAt,
};

export function userRoutes(app: Api, ctx: AppContext): void {
  app.post(
    '/api/v1/users',
    {
      config: { permission: ['create', 'Member'] },
      schema: {
        tags: ['members'],
        summary: 'Add a user to the organization with a role',
        body: z.strictObject({
          email,
          password,
          name: displayName('name').optional(),
          role: roleField,
        }),
      },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      const { body } = req;
      await assertCanGrantRole(ctx.db, actor, body.role);
      const id = randomUUID();
      const passwordHash = await hashPassword(body.password);
      try {
        await ctx.db.transaction(async (tx) => {
          await tx
            .insert(users)
            .values({ id, email: body.email, name: body.name ?? body.email, passwordHash });
          await tx
            .insert(orgMemberships)
            .values({ orgId: actor.orgId, userId: id, role: body.role });
          await ctx.audit.record(
            auditActor(actor),
            'member.create',
            { userId: id, email: body.email, role: body.role },
            auditContext(req, actor.orgId),
            tx,
          );
        });
      } catch (err) {
        if (isUniqueViolation(err))
          throw conflict(`A user with email ${body.email} already exists.`);
        throw err;
      }
      return reply
        .code(201)
        .send({ id, email: body.email, name: body.name ?? body.email, role: body.role });
    },
  );

  app.get(
    '/api/v1/users',
    {
      config: { permission: ['read', 'Member'] },
      schema: {
        tags: ['members'],
        summary: "List the organization's users",
        querystring: pageQuery,
      },
    },
    async (req) => {
      const actor = actorOf(req);
      const rows = await ctx.db
        .select(memberColumns)
        .from(orgMemberships)
        .innerJoin(users, eq(users.id, orgMemberships.userId))
        .where(
          and(
            eq(orgMemberships.orgId, actor.orgId),
            afterCursor(orgMemberships.createdAt, users.id, req.query.cursor),
          ),
        )
        .orderBy(asc(orgMemberships.createdAt), asc(users.id))
        .limit(req.query.limit + 1);
      return pageOf(rows, req.query.limit);
    },
  );

  app.get(
    '/api/v1/users/:id',
    {
      config: { permission: ['read', 'Member'] },
      schema: { tags: ['members'], summary: 'One user of the organization', params: idParams },
    },
    async (req) => findMember(ctx, actorOf(req).orgId, req.params.id),
  );

  app.patch(
    '/api/v1/users/:id',
    {
      config: { permission: ['edit', 'Member'] },
      schema: {
        tags: ['members'],
        summary: "Change a user's role or name",
        params: idParams,
        body: z.strictObject({ role: roleField.optional(), name: displayName('name').optional() }),
      },
    },
    async (req) => {
      const actor = actorOf(req);
      const before = await findMember(ctx, actor.orgId, req.params.id);
      await assertCanManageHolder(ctx.db, actor, before, 'user');
      const { role, name } = req.body;
      if (role) await assertCanGrantRole(ctx.db, actor, role);
      await ctx.db.transaction(async (tx) => {
        if (role && role !== before.role) {
          if (before.role === 'admin') await assertAnotherAdmin(tx, actor.orgId, before.id);
          await tx
            .update(orgMemberships)
            .set({ role })
            .where(
              and(eq(orgMemberships.orgId, actor.orgId), eq(orgMemberships.userId, before.id)),
            );
        }
        if (name) await tx.update(users).set({ name }).where(eq(users.id, before.id));
        await ctx.audit.record(
          auditActor(actor),
          'member.update',
          {
            userId: before.id,
            email: before.email,
            ...(role ? { role, previousRole: before.role } : {}),
            ...(name ? { name } : {}),
          },
          auditContext(req, actor.orgId),
          tx,
        );
      });
      return findMember(ctx, actor.orgId, before.id);
    },
  );

  app.delete(
    '/api/v1/users/:id',
    {
      config: { permission: ['delete', 'Member'] },
      schema: {
        tags: ['members'],
        summary: 'Remove a user from the organization',
        params: idParams,
      },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      const member = await findMember(ctx, actor.orgId, req.params.id);
      await assertCanManageHolder(ctx.db, actor, member, 'user');
      await ctx.db.transaction(async (tx) => {
        if (member.role === 'admin') await assertAnotherAdmin(tx, actor.orgId, member.id);
        await tx
          .delete(orgMemberships)
          .where(and(eq(orgMemberships.orgId, actor.orgId), eq(orgMemberships.userId, member.id)));
        await tx
          .delete(sessions)
          .where(and(eq(sessions.orgId, actor.orgId), eq(sessions.userId, member.id)));
        // A user left in no organization is deleted, so the same email can be added again.
        const [rest] = await tx
          .select({ n: count() })
          .from(orgMemberships)
          .where(eq(orgMemberships.userId, member.id));
        if ((rest?.n ?? 0) === 0) await tx.delete(users).where(eq(users.id, member.id));
        await ctx.audit.record(
          auditActor(actor),
          'member.remove',
          { userId: member.id, email: member.email },
          auditContext(req, actor.orgId),
          tx,
        );
      });
      return reply.code(204).send();
    },
  );
}

async function findMember(ctx: AppContext, orgId: string, userId: string) {
  const [row] = await ctx.db
    .select(memberColumns)
    .from(orgMemberships)
    .innerJoin(users, eq(users.id, orgMemberships.userId))
    .where(and(eq(orgMemberships.orgId, orgId), eq(orgMemberships.userId, userId)));
  if (!row) throw notFound('User');
  return row;
}

/** An org must keep at least one admin, or nobody could ever administer it again. */
async function assertAnotherAdmin(tx: Tx, orgId: string, leavingUserId: string): Promise<void> {
  const [row] = await tx
    .select({ n: count() })
    .from(orgMemberships)
    .where(
      and(
        eq(orgMemberships.orgId, orgId),
        eq(orgMemberships.role, 'admin'),
        ne(orgMemberships.userId, leavingUserId),
      ),
    );
  if ((row?.n ?? 0) === 0)
    throw conflict('This is the last admin of the organization: make someone else admin first.');
}
