import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { AppContext } from '../context.js';
import { displayName, email, noContent, password, type Api } from '../http/schemas.js';
import { MemberService } from '../users/service.js';
import { pendingInvitation, pendingInvitationSchema } from '../users/views.js';
import { actorOf, whoOf } from './actor.js';
import { AuthService, type Client, type SignedIn } from './service.js';
import { SESSION_COOKIE, sessionCookie, type StartedSession } from './sessions.js';

const orgRef = z.object({ id: z.string(), name: z.string() });
const signedInSchema = z.object({
  token: z.string(),
  tokenType: z.literal('Bearer'),
  expiresAt: z.string(),
  user: z.object({ id: z.string(), email: z.string(), name: z.string() }),
  organization: orgRef,
  role: z.string(),
  pendingInvitations: z.array(pendingInvitationSchema),
  passwordChangeRequired: z
    .boolean()
    .describe(
      'The password was chosen by someone else (the inviting admin): this session may only read /me, change the password and log out until it is changed',
    ),
});
const meSchema = z.object({
  type: z.enum(['user', 'identity']),
  id: z.string(),
  name: z.string(),
  organization: orgRef,
  role: z.string(),
  roleName: z.string(),
  permissions: z.array(z.object({ subject: z.string(), action: z.string() })),
  organizations: z.array(orgRef.extend({ role: z.string() })),
  pendingInvitations: z.array(pendingInvitationSchema),
  passwordChangeRequired: z
    .boolean()
    .describe(
      'Change your password first (POST /api/v1/auth/password): every other route answers 403 password_change_required until then',
    ),
});

const clientOf = (req: FastifyRequest): Client => ({
  ip: req.ip,
  userAgent: req.headers['user-agent'],
});

function setCookie(req: FastifyRequest, reply: FastifyReply, s: StartedSession): void {
  const c = sessionCookie(s, req.protocol === 'https');
  void reply.setCookie(c.name, c.value, c.options);
}

const signedIn = (s: SignedIn) => ({
  token: s.session.token,
  tokenType: 'Bearer' as const,
  expiresAt: s.session.expiresAt.toISOString(),
  user: s.user,
  organization: s.organization,
  role: s.role,
  pendingInvitations: s.pendingInvitations.map(pendingInvitation),
  passwordChangeRequired: s.passwordChangeRequired,
});

export function authRoutes(app: Api, ctx: AppContext): void {
  const tags = ['auth'];
  const auth = new AuthService({
    db: ctx.db,
    audit: ctx.audit,
    people: new MemberService({ db: ctx.db, audit: ctx.audit }),
    sessionTtlSeconds: ctx.config.sessionTtlSeconds,
    limits: { perIp: ctx.limits.loginPerIp, perIpAccount: ctx.limits.loginPerAccount },
  });

  app.get(
    '/api/v1/bootstrap',
    {
      config: { auth: 'public' },
      schema: {
        tags,
        operationId: 'getBootstrapStatus',
        summary: 'Whether the platform still needs its first admin',
        response: { 200: z.object({ bootstrapped: z.boolean() }) },
      },
    },
    async () => ({ bootstrapped: !(await auth.needsBootstrap()) }),
  );

  app.post(
    '/api/v1/bootstrap',
    {
      config: { auth: 'public' },
      schema: {
        tags,
        operationId: 'bootstrap',
        summary: 'Create the first admin and organization (only while no user exists)',
        body: z.strictObject({
          email,
          password,
          organizationName: displayName('organizationName'),
          name: displayName('name').optional(),
        }),
        response: {
          201: z.object({
            organization: orgRef,
            user: z.object({ id: z.string(), email: z.string() }),
            token: z.string(),
            expiresAt: z.string(),
          }),
        },
      },
    },
    async (req, reply) => {
      const { body } = req;
      const { orgId, userId, session } = await auth.bootstrap(body, clientOf(req));
      setCookie(req, reply, session);
      return reply.code(201).send({
        organization: { id: orgId, name: body.organizationName },
        user: { id: userId, email: body.email },
        token: session.token,
        expiresAt: session.expiresAt.toISOString(),
      });
    },
  );

  app.post(
    '/api/v1/auth/login',
    {
      config: { auth: 'public' },
      schema: {
        tags,
        operationId: 'login',
        summary:
          'Log in with email and password; returns a bearer token, sets a session cookie and lists pending invitations',
        body: z.strictObject({
          email,
          password: z.string().min(1, 'password is required').max(256),
          organizationId: z.uuid('organizationId must be a UUID').optional(),
        }),
        response: { 200: signedInSchema },
      },
    },
    async (req, reply) => {
      const result = await auth.login(req.body, clientOf(req));
      setCookie(req, reply, result.session);
      return signedIn(result);
    },
  );

  app.post(
    '/api/v1/auth/switch-organization',
    {
      config: { auth: 'authenticated' },
      schema: {
        tags,
        operationId: 'switchOrganization',
        summary:
          'Move your session to another organization you belong to (a new session; the current one ends)',
        body: z.strictObject({ organizationId: z.uuid('organizationId must be a UUID') }),
        response: { 200: signedInSchema },
      },
    },
    async (req, reply) => {
      const result = await auth.switchOrganization(
        actorOf(req),
        whoOf(req),
        req.body.organizationId,
        clientOf(req),
      );
      setCookie(req, reply, result.session);
      return signedIn(result);
    },
  );

  app.post(
    '/api/v1/auth/logout',
    {
      config: { auth: 'authenticated', beforePasswordChange: true },
      schema: {
        tags,
        operationId: 'logout',
        summary: 'Revoke the current session or access token',
        response: { 204: noContent },
      },
    },
    async (req, reply) => {
      await auth.logout(actorOf(req), whoOf(req));
      void reply.clearCookie(SESSION_COOKIE, { path: '/' });
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/api/v1/auth/password',
    {
      config: { auth: 'authenticated', beforePasswordChange: true },
      schema: {
        tags,
        operationId: 'changePassword',
        summary:
          'Change your own password (the current one required); your other sessions end, this one stays',
        body: z.strictObject({
          currentPassword: z
            .string({ error: 'currentPassword is required' })
            .min(1, 'currentPassword is required')
            .max(256),
          newPassword: z
            .string({ error: 'newPassword is required' })
            .min(12, 'newPassword must be at least 12 characters')
            .max(256, 'newPassword must be at most 256 characters'),
        }),
        response: { 200: z.object({ otherSessionsEnded: z.number() }) },
      },
    },
    async (req) => auth.changePassword(actorOf(req), whoOf(req), req.body),
  );

  app.get(
    '/api/v1/me',
    {
      config: { auth: 'authenticated', beforePasswordChange: true },
      schema: {
        tags,
        operationId: 'getMe',
        summary:
          'Who the caller is, in which org, with what permissions; its organizations and pending invitations',
        response: { 200: meSchema },
      },
    },
    async (req) => {
      const me = await auth.me(actorOf(req));
      return { ...me, pendingInvitations: me.pendingInvitations.map(pendingInvitation) };
    },
  );
}
