import { z } from 'zod';
import { actorOf, whoOf } from '../auth/actor.js';
import type { AppContext } from '../context.js';
import { forbidden } from '../http/errors.js';
import {
  displayName,
  email,
  idParams,
  noContent,
  pageQuery,
  pageSchema,
  password,
  slug,
  type Api,
} from '../http/schemas.js';
import { MemberService, type InvitationView } from './service.js';
import { pendingInvitation, pendingInvitationSchema } from './views.js';

const roleField = slug('role', 64);

const memberView = z.object({
  id: z.string(),
  email: z.string(),
  name: z.string(),
  role: z.string(),
  createdAt: z.string(),
});
const member = (m: { id: string; email: string; name: string; role: string; createdAt: Date }) => ({
  ...m,
  createdAt: m.createdAt.toISOString(),
});

const invitationSchema = z.object({
  id: z.string(),
  email: z.string(),
  role: z.string(),
  status: z.literal('pending'),
  invitedBy: z.object({ type: z.string(), id: z.string().nullable(), name: z.string().nullable() }),
  createdAt: z.string(),
  expiresAt: z.string(),
});
const invitation = (i: InvitationView) => ({
  ...i,
  createdAt: i.createdAt.toISOString(),
  expiresAt: i.expiresAt.toISOString(),
});

export function userRoutes(app: Api, ctx: AppContext): void {
  const members = new MemberService({ db: ctx.db, audit: ctx.audit });
  const tags = ['members'];

  app.post(
    '/api/v1/users',
    {
      config: { permission: ['create', 'Member'] },
      schema: {
        tags,
        operationId: 'inviteUser',
        summary: 'Invite a person into the organization with a role',
        description:
          'Always answers 201 with a pending invitation, whether or not the e-mail already has an account. ' +
          'A new e-mail gets an account with `password`, and signing in with it accepts the invitation; ' +
          'since you chose that password, the person must replace it first (passwordChangeRequired: every other route answers 403 password_change_required until then); ' +
          'a person who already has an account keeps their password and accepts with `acceptCode` (shown once), which you pass on. ' +
          '409 when the e-mail is already a member of, or invited to, this organization.',
        body: z.strictObject({
          email,
          password,
          name: displayName('name').optional(),
          role: roleField,
        }),
        response: {
          201: invitationSchema.extend({
            acceptCode: z
              .string()
              .describe(
                'Shown once: give it to the person with the password; they accept with it (POST /api/v1/me/invitations/:id/accept)',
              ),
          }),
        },
      },
    },
    async (req, reply) => {
      const made = await members.invite(actorOf(req), whoOf(req), req.body);
      return reply.code(201).send({ ...invitation(made.invitation), acceptCode: made.acceptCode });
    },
  );

  app.get(
    '/api/v1/users',
    {
      config: { permission: ['read', 'Member'] },
      schema: {
        tags,
        operationId: 'listUsers',
        summary: "List the organization's users",
        querystring: pageQuery,
        response: { 200: pageSchema(memberView) },
      },
    },
    async (req) => {
      const page = await members.list(actorOf(req).orgId, req.query.cursor, req.query.limit);
      return { items: page.items.map(member), nextCursor: page.nextCursor };
    },
  );

  app.get(
    '/api/v1/users/:id',
    {
      config: { permission: ['read', 'Member'] },
      schema: {
        tags,
        operationId: 'getUser',
        summary: 'One user of the organization',
        params: idParams,
        response: { 200: memberView },
      },
    },
    async (req) => member(await members.get(actorOf(req).orgId, req.params.id)),
  );

  app.patch(
    '/api/v1/users/:id',
    {
      config: { permission: ['edit', 'Member'] },
      schema: {
        tags,
        operationId: 'updateUser',
        summary: "Change a user's role or name",
        params: idParams,
        body: z.strictObject({ role: roleField.optional(), name: displayName('name').optional() }),
        response: { 200: memberView },
      },
    },
    async (req) => member(await members.update(actorOf(req), whoOf(req), req.params.id, req.body)),
  );

  app.delete(
    '/api/v1/users/:id',
    {
      config: { permission: ['delete', 'Member'] },
      schema: {
        tags,
        operationId: 'deleteUser',
        summary: 'Remove a user from the organization',
        params: idParams,
        response: { 204: noContent },
      },
    },
    async (req, reply) => {
      await members.remove(actorOf(req), whoOf(req), req.params.id);
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/api/v1/invitations',
    {
      config: { permission: ['read', 'Member'] },
      schema: {
        tags,
        operationId: 'listInvitations',
        summary: "The organization's pending invitations, oldest first",
        querystring: pageQuery,
        response: { 200: pageSchema(invitationSchema) },
      },
    },
    async (req) => {
      const page = await members.listInvitations(
        actorOf(req).orgId,
        req.query.cursor,
        req.query.limit,
      );
      return { items: page.items.map(invitation), nextCursor: page.nextCursor };
    },
  );

  app.delete(
    '/api/v1/invitations/:id',
    {
      config: { permission: ['create', 'Member'] },
      schema: {
        tags,
        operationId: 'revokeInvitation',
        summary: 'Revoke a pending invitation',
        params: idParams,
        response: { 204: noContent },
      },
    },
    async (req, reply) => {
      await members.revokeInvitation(actorOf(req), whoOf(req), req.params.id);
      return reply.code(204).send(null);
    },
  );

  // The invited person's side: any signed-in user, about their own invitations only.
  const personOf = (req: Parameters<typeof actorOf>[0]) => {
    const actor = actorOf(req);
    if (actor.type !== 'user')
      throw forbidden(
        'Only people have invitations; machine identities belong to one organization.',
      );
    const { actor: by, ip, userAgent } = whoOf(req);
    return { user: { id: actor.id, name: actor.name }, who: { actor: by, ip, userAgent } };
  };

  app.get(
    '/api/v1/me/invitations',
    {
      config: { auth: 'authenticated' },
      schema: {
        tags: ['auth'],
        operationId: 'listMyInvitations',
        summary: 'Your pending invitations into other organizations',
        response: { 200: z.object({ items: z.array(pendingInvitationSchema) }) },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      if (actor.type !== 'user') return { items: [] };
      return { items: (await members.pendingFor(actor.id)).map(pendingInvitation) };
    },
  );

  app.post(
    '/api/v1/me/invitations/:id/accept',
    {
      config: { auth: 'authenticated' },
      schema: {
        tags: ['auth'],
        operationId: 'acceptInvitation',
        summary:
          'Accept an invitation with the code the inviting admin gave you; switch to the organization with /auth/switch-organization',
        params: idParams,
        body: z.strictObject({
          code: z.string().trim().min(1, 'code is required').max(64, 'code is too long'),
        }),
        response: {
          200: z.object({
            organization: z.object({ id: z.string(), name: z.string() }),
            role: z.string(),
          }),
        },
      },
    },
    async (req) => {
      const { user, who } = personOf(req);
      return members.accept(user, who, req.params.id, req.body.code);
    },
  );

  app.post(
    '/api/v1/me/invitations/:id/decline',
    {
      config: { auth: 'authenticated' },
      schema: {
        tags: ['auth'],
        operationId: 'declineInvitation',
        summary: 'Decline an invitation',
        params: idParams,
        response: { 204: noContent },
      },
    },
    async (req, reply) => {
      const { user, who } = personOf(req);
      await members.decline(user, who, req.params.id);
      return reply.code(204).send(null);
    },
  );
}
