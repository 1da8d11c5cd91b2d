import { randomUUID } from 'node:crypto';
import { and, asc, count, eq, sql } from 'drizzle-orm';
import { z } from 'zod';
import type { AppContext } from '../context.js';
import {
  identityAccessTokens,
  organizations,
  orgMemberships,
  sessions,
  users,
} from '../db/schema.js';
import { AppError, tooManyRequests, unauthorized } from '../http/errors.js';
import { displayName, email, password, type Api } from '../http/schemas.js';
import { BUILT_IN_ROLES, isBuiltInRole } from '../rbac/permissions.js';
import { permissionsForRole } from '../rbac/roles-resolver.js';
import { actorOf, auditActor, auditContext } from './actor.js';
import { SESSION_COOKIE } from './authenticate.js';
import { DUMMY_HASH_PROMISE, hashPassword, verifyPassword } from './passwords.js';
import { newToken } from './tokens.js';

const BOOTSTRAP_LOCK_KEY = 4_711_2027;

export function authRoutes(app: Api, ctx: AppContext): void {
  app.get(
    '/api/v1/bootstrap',
    {
      config: { auth: 'public' },
      schema: { tags: ['auth'], summary: 'Whether the platform still needs its first admin' },
    },
    async () => {
      const [row] = await ctx.db.select({ n: count() }).from(users);
      return { bootstrapped: (row?.n ?? 0) > 0 };
    },
  );

  app.post(
    '/api/v1/bootstrap',
    {
      config: { auth: 'public' },
      schema: {
        tags: ['auth'],
        summary: 'Create the first admin and organization (only while no user exists)',
        body: z.strictObject({
          email,
          password,
          organizationName: displayName('organizationName'),
          name: displayName('name').optional(),
        }),
      },
    },
    async (req, reply) => {
      const { body } = req;
      const passwordHash = await hashPassword(body.password);
      const orgId = randomUUID();
      const userId = randomUUID();
      await ctx.db.transaction(async (tx) => {
        // Serialises concurrent bootstraps: exactly one sees zero users.
        await tx.execute(sql`select pg_advisory_xact_lock(${BOOTSTRAP_LOCK_KEY})`);
        const [row] = await tx.select({ n: count() }).from(users);
        if ((row?.n ?? 0) > 0) {
          throw new AppError(
            409,
            'already_bootstrapped',
            'The platform is already set up: log in instead.',
          );
        }
        await tx.insert(organizations).values({ id: orgId, name: body.organizationName });
        await tx
          .insert(users)
          .values({ id: userId, email: body.email, name: body.name ?? body.email, passwordHash });
        await tx.insert(orgMemberships).values({ orgId, userId, role: 'admin' });
        await ctx.audit.record(
          { type: 'user', id: userId, name: body.email },
          'platform.bootstrap',
          { organizationName: body.organizationName, email: body.email },
          auditContext(req, orgId),
          tx,
        );
      });
      const session = await startSession(ctx, {
        userId,
        orgId,
        ip: req.ip,
        userAgent: req.headers['user-agent'],
      });
      setSessionCookie(reply, session, req.protocol === 'https');
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
        tags: ['auth'],
        summary: 'Log in with email and password; returns a bearer token and sets a session cookie',
        body: z.strictObject({
          email,
          password: z.string().min(1, 'password is required').max(256),
          organizationId: z.uuid().optional(),
        }),
      },
    },
    async (req, reply) => {
      const { email: mail, password: pw, organizationId } = req.body;
      const ipWait = ctx.limits.loginPerIp.hit(req.ip);
      const accountWait = ctx.limits.loginPerAccount.hit(mail);
      if (ipWait || accountWait) {
        throw tooManyRequests(
          `Too many login attempts; try again in ${Math.max(ipWait, accountWait)} s.`,
          Math.max(ipWait, accountWait),
        );
      }
      const [user] = await ctx.db.select().from(users).where(eq(users.email, mail));
      const ok = await verifyPassword(pw, user?.passwordHash ?? (await DUMMY_HASH_PROMISE));
      const memberships = user
        ? await ctx.db
            .select({
              orgId: orgMemberships.orgId,
              role: orgMemberships.role,
              orgName: organizations.name,
            })
            .from(orgMemberships)
            .innerJoin(organizations, eq(organizations.id, orgMemberships.orgId))
            .where(eq(orgMemberships.userId, user.id))
            .orderBy(asc(orgMemberships.createdAt))
        : [];
      const membership = organizationId
        ? memberships.find((m) => m.orgId === organizationId)
        : memberships[0];
      if (!user || !ok || !membership) {
        await ctx.audit.record(
          { type: 'anonymous', name: mail },
          'auth.login-failed',
          { email: mail, reason: !user || !ok ? 'bad_credentials' : 'no_membership' },
          auditContext(req, user && ok ? null : (memberships[0]?.orgId ?? null)),
        );
        throw unauthorized('Email or password is incorrect.');
      }
      ctx.limits.loginPerAccount.reset(mail);
      const session = await startSession(ctx, {
        userId: user.id,
        orgId: membership.orgId,
        ip: req.ip,
        userAgent: req.headers['user-agent'],
      });
      await ctx.audit.record(
        { type: 'user', id: user.id, name: user.email },
        'auth.login',
        { method: 'password' },
        auditContext(req, membership.orgId),
      );
      setSessionCookie(reply, session, req.protocol === 'https');
      return {
        token: session.token,
        tokenType: 'Bearer',
        expiresAt: session.expiresAt.toISOString(),
        user: { id: user.id, email: user.email, name: user.name },
        organization: { id: membership.orgId, name: membership.orgName },
        role: membership.role,
      };
    },
  );

  app.post(
    '/api/v1/auth/logout',
    {
      config: { auth: 'authenticated' },
      schema: { tags: ['auth'], summary: 'Revoke the current session or access token' },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      const now = new Date();
      if (actor.sessionId) {
        await ctx.db
          .update(sessions)
          .set({ revokedAt: now })
          .where(eq(sessions.id, actor.sessionId));
      } else if (actor.tokenId) {
        await ctx.db
          .update(identityAccessTokens)
          .set({ revokedAt: now })
          .where(
            and(
              eq(identityAccessTokens.id, actor.tokenId),
              eq(identityAccessTokens.orgId, actor.orgId),
            ),
          );
      }
      await ctx.audit.record(auditActor(actor), 'auth.logout', {}, auditContext(req, actor.orgId));
      void reply.clearCookie(SESSION_COOKIE, { path: '/' });
      return reply.code(204).send();
    },
  );

  app.get(
    '/api/v1/me',
    {
      config: { auth: 'authenticated' },
      schema: { tags: ['auth'], summary: 'Who the caller is, in which org, with what permissions' },
    },
    async (req) => {
      const actor = actorOf(req);
      const [org] = await ctx.db
        .select({ id: organizations.id, name: organizations.name })
        .from(organizations)
        .where(eq(organizations.id, actor.orgId));
      return {
        type: actor.type,
        id: actor.id,
        name: actor.name,
        organization: org,
        role: actor.role,
        roleName: isBuiltInRole(actor.role) ? BUILT_IN_ROLES[actor.role].name : actor.role,
        permissions: await permissionsForRole(ctx.db, actor.orgId, actor.role),
      };
    },
  );
}

export async function startSession(
  ctx: AppContext,
  s: { userId: string; orgId: string; ip: string; userAgent: string | undefined },
): Promise<{ token: string; expiresAt: Date }> {
  const { token, hash } = newToken('session');
  const expiresAt = new Date(Date.now() + ctx.config.sessionTtlSeconds * 1000);
  await ctx.db.insert(sessions).values({
    id: randomUUID(),
    tokenHash: hash,
    userId: s.userId,
    orgId: s.orgId,
    ip: s.ip,
    userAgent: s.userAgent?.slice(0, 512) ?? null,
    expiresAt,
  });
  return { token, expiresAt };
}

function setSessionCookie(
  reply: { setCookie: (n: string, v: string, o: object) => unknown },
  s: { token: string; expiresAt: Date },
  secure: boolean,
): void {
  reply.setCookie(SESSION_COOKIE, s.token, {
    httpOnly: true,
    sameSite: 'lax',
    secure,
    path: '/',
    expires: s.expiresAt,
  });
}
