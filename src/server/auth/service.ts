import { randomUUID } from 'node:crypto';
import { and, count, eq, sql } from 'drizzle-orm';
import type { AuditLog, AuditWho } from '../audit/service.js';
import type { Db } from '../db/client.js';
import { identityAccessTokens, organizations, orgMemberships, users } from '../db/schema.js';
import {
  AppError,
  badRequest,
  forbidden,
  notFound,
  tooManyRequests,
  unauthorized,
} from '../http/errors.js';
import { BUILT_IN_ROLES, isBuiltInRole, type Permission } from '../rbac/permissions.js';
import { permissionsForRole, roleDisplayName } from '../rbac/roles-resolver.js';
import type { Actor } from './actor.js';
import { DUMMY_HASH_PROMISE, hashPassword, verifyPassword } from './passwords.js';
import { findCredentials, revokeOtherSessions, setPasswordHash } from './queries.js';
import type { RateLimiter } from './rate-limit.js';
import { recordSessionEndings } from './session-endings.js';
import { revokeSession, startSession, type StartedSession } from './sessions.js';

const BOOTSTRAP_LOCK_KEY = 4_711_2027;

/** Where a sign-in comes from: what sessions and audit entries record. */
export interface Client {
  ip: string;
  userAgent: string | undefined;
}

export interface PendingInvite {
  id: string;
  organization: { id: string; name: string };
  role: string;
  invitedBy: string | null;
  createdAt: Date;
  expiresAt: Date;
}

/** What sign-in needs to know of people's organizations and invitations (users/service). */
export interface SignInPeople {
  acceptCreatedAccount(
    user: { id: string; email: string },
    who: Omit<AuditWho, 'orgId'>,
  ): Promise<void>;
  pendingFor(userId: string): Promise<PendingInvite[]>;
  organizationsOf(userId: string): Promise<{ id: string; name: string; role: string }[]>;
}

export interface AuthDeps {
  db: Db;
  audit: AuditLog;
  people: SignInPeople;
  sessionTtlSeconds: number;
  limits: {
    /** Attempts per client IP, whatever the account (GATEPOOL_LOGIN_RATE_LIMIT a minute). */
    perIp: RateLimiter;
    /** Attempts per client IP and e-mail: guessing one account from one place. */
    perIpAccount: RateLimiter;
  };
}

export interface SignedIn {
  session: StartedSession;
  user: { id: string; email: string; name: string };
  organization: { id: string; name: string };
  role: string;
  pendingInvitations: PendingInvite[];
  /** Someone else chose the password: the session may only change it (auth-hook.ts). */
  passwordChangeRequired: boolean;
}

export interface Me {
  type: 'user' | 'identity';
  id: string;
  name: string;
  organization: { id: string; name: string };
  role: string;
  roleName: string;
  permissions: Permission[];
  organizations: { id: string; name: string; role: string }[];
  pendingInvitations: PendingInvite[];
  passwordChangeRequired: boolean;
}

export class AuthService {
  constructor(private readonly deps: AuthDeps) {}

  async needsBootstrap(): Promise<boolean> {
    const [row] = await this.deps.db.select({ n: count() }).from(users);
    return Number(row?.n ?? 0) === 0;
  }

  /** Creates the first admin and organization, only while no user exists. */
  async bootstrap(
    input: { email: string; password: string; organizationName: string; name?: string },
    client: Client,
  ): Promise<{ orgId: string; userId: string; session: StartedSession }> {
    const passwordHash = await hashPassword(input.password);
    const orgId = randomUUID();
    const userId = randomUUID();
    await this.deps.audit.audited(
      {
        actor: { type: 'user', id: userId, name: input.email },
        orgId,
        ip: client.ip,
        userAgent: client.userAgent,
      },
      'platform.bootstrap',
      async (tx) => {
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
        await tx.insert(organizations).values({ id: orgId, name: input.organizationName });
        await tx.insert(users).values({
          id: userId,
          email: input.email,
          name: input.name ?? input.email,
          passwordHash,
        });
        await tx.insert(orgMemberships).values({ orgId, userId, role: 'admin' });
      },
      { organizationName: input.organizationName, email: input.email },
    );
    const session = await startSession(this.deps.db, this.deps.sessionTtlSeconds, {
      userId,
      orgId,
      ...client,
    });
    return { orgId, userId, session };
  }

  /**
   * Password sign-in. Throttled per client IP and per (IP, e-mail), never per e-mail alone:
   * that would let anyone lock a person out by failing on purpose. A right password from a
   * client within its limits always succeeds.
   */
  async login(
    input: { email: string; password: string; organizationId?: string },
    client: Client,
  ): Promise<SignedIn> {
    const { email, password, organizationId } = input;
    const { perIp, perIpAccount } = this.deps.limits;
    const accountKey = `${client.ip} ${email}`;
    const wait = Math.max(perIp.hit(client.ip), perIpAccount.hit(accountKey));
    if (wait) throw tooManyRequests(`Too many login attempts; try again in ${wait} s.`, wait);

    const [user] = await this.deps.db.select().from(users).where(eq(users.email, email));
    const ok = await verifyPassword(password, user?.passwordHash ?? (await DUMMY_HASH_PROMISE));
    const context = { ip: client.ip, userAgent: client.userAgent ?? null };
    if (!user || !ok) {
      // A wrong password for a real account shows in its organization's log.
      const orgId = user
        ? ((await this.deps.people.organizationsOf(user.id))[0]?.id ?? null)
        : null;
      await this.deps.audit.record(
        { type: 'anonymous', name: email },
        'auth.login-failed',
        { email, reason: 'bad_credentials' },
        { ...context, orgId },
      );
      throw unauthorized('Email or password is incorrect.');
    }
    perIpAccount.reset(accountKey);
    const who = { actor: { type: 'user' as const, id: user.id, name: user.email }, ...context };
    await this.deps.people.acceptCreatedAccount(user, who);
    const memberships = await this.deps.people.organizationsOf(user.id);
    const membership = organizationId
      ? memberships.find((m) => m.id === organizationId)
      : memberships[0];
    if (!membership) {
      await this.deps.audit.record(
        who.actor,
        'auth.login-failed',
        { email, reason: 'no_membership' },
        { ...context, orgId: null },
      );
      // Only someone with the right password learns this, so it may be specific.
      throw unauthorized(
        organizationId
          ? 'You are not a member of that organization: log in without organizationId, or accept its invitation first.'
          : 'This account belongs to no organization: ask an organization admin to invite you.',
      );
    }
    const session = await startSession(this.deps.db, this.deps.sessionTtlSeconds, {
      userId: user.id,
      orgId: membership.id,
      ...client,
    });
    await this.deps.audit.record(
      who.actor,
      'auth.login',
      { method: 'password' },
      { ...context, orgId: membership.id },
    );
    return {
      session,
      user: { id: user.id, email: user.email, name: user.name },
      organization: { id: membership.id, name: membership.name },
      role: membership.role,
      pendingInvitations: await this.deps.people.pendingFor(user.id),
      passwordChangeRequired: user.passwordChangeRequired,
    };
  }

  /** A new session in another organization of the same user; the current one ends. */
  async switchOrganization(
    actor: Actor,
    who: AuditWho,
    organizationId: string,
    client: Client,
  ): Promise<SignedIn> {
    if (actor.type !== 'user' || !actor.sessionId)
      throw forbidden(
        'Only a signed-in person can switch organization; a machine identity belongs to one.',
      );
    const memberships = await this.deps.people.organizationsOf(actor.id);
    const membership = memberships.find((m) => m.id === organizationId);
    // Another organization's id is not told apart from a made-up one.
    if (!membership) throw notFound('Organization');
    const [user] = await this.deps.db.select().from(users).where(eq(users.id, actor.id));
    if (!user) throw unauthorized();
    const session = await this.deps.audit.audited(
      { ...who, orgId: membership.id },
      'auth.switch-organization',
      async (tx) => {
        await revokeSession(tx, actor.sessionId!);
        return startSession(tx, this.deps.sessionTtlSeconds, {
          userId: actor.id,
          orgId: membership.id,
          ...client,
        });
      },
      { fromOrganizationId: actor.orgId },
    );
    return {
      session,
      user: { id: user.id, email: user.email, name: user.name },
      organization: { id: membership.id, name: membership.name },
      role: membership.role,
      pendingInvitations: await this.deps.people.pendingFor(user.id),
      passwordChangeRequired: user.passwordChangeRequired,
    };
  }

  /**
   * A person changes their own password, proving the current one. A wrong current password
   * counts toward the same sign-in limits as a failed login (it is as good as a guess), and is
   * refused as a field error, not a 401: the session itself is fine. Success ends the person's
   * other sessions (a stolen one among them), keeps the one making the change, and is audited
   * without either password.
   */
  async changePassword(
    actor: Actor,
    who: AuditWho,
    input: { currentPassword: string; newPassword: string },
  ): Promise<{ otherSessionsEnded: number }> {
    if (actor.type !== 'user' || !actor.sessionId)
      throw forbidden(
        'Only a signed-in person can change their password; a machine identity has none.',
      );
    const account = await findCredentials(this.deps.db, actor.id);
    if (!account) throw unauthorized();
    const ip = who.ip ?? 'unknown';
    const { perIp, perIpAccount } = this.deps.limits;
    const accountKey = `${ip} ${account.email}`;
    const wait = Math.max(perIp.hit(ip), perIpAccount.hit(accountKey));
    if (wait) throw tooManyRequests(`Too many password attempts; try again in ${wait} s.`, wait);
    if (!(await verifyPassword(input.currentPassword, account.passwordHash))) {
      await this.deps.audit.record(
        who.actor,
        'user.password-change-failed',
        { reason: 'wrong_current_password' },
        who,
      );
      throw badRequest('The current password is incorrect.', {
        fields: [{ field: 'body.currentPassword', message: 'The current password is incorrect.' }],
      });
    }
    if (input.newPassword === input.currentPassword)
      throw badRequest('The new password is the same as the current one.', {
        fields: [
          {
            field: 'body.newPassword',
            message: 'Choose a password different from the current one.',
          },
        ],
      });
    perIpAccount.reset(accountKey);
    const hash = await hashPassword(input.newPassword);
    const sessionId = actor.sessionId;
    return this.deps.audit.audited(
      who,
      'user.password-changed',
      async (tx) => {
        await setPasswordHash(tx, actor.id, hash);
        await recordSessionEndings(tx, 'password', { userId: actor.id, keepSessionId: sessionId });
        return { otherSessionsEnded: await revokeOtherSessions(tx, actor.id, sessionId) };
      },
      (r) => ({ otherSessionsEnded: r.otherSessionsEnded }),
    );
  }

  async logout(actor: Actor, who: AuditWho): Promise<void> {
    await this.deps.audit.audited(
      who,
      'auth.logout',
      async (tx) => {
        if (actor.sessionId) await revokeSession(tx, actor.sessionId);
        else if (actor.tokenId) {
          await tx
            .update(identityAccessTokens)
            .set({ revokedAt: new Date() })
            .where(
              and(
                eq(identityAccessTokens.id, actor.tokenId),
                eq(identityAccessTokens.orgId, actor.orgId),
              ),
            );
        }
      },
      {},
    );
  }

  async me(actor: Actor): Promise<Me> {
    const [org] = await this.deps.db
      .select({ id: organizations.id, name: organizations.name })
      .from(organizations)
      .where(eq(organizations.id, actor.orgId));
    if (!org) throw unauthorized();
    const isUser = actor.type === 'user';
    return {
      type: actor.type,
      id: actor.id,
      name: actor.name,
      organization: org,
      role: actor.role,
      roleName: isBuiltInRole(actor.role)
        ? BUILT_IN_ROLES[actor.role].name
        : ((await roleDisplayName(this.deps.db, actor.orgId, actor.role)) ?? actor.role),
      permissions: await permissionsForRole(this.deps.db, actor.orgId, actor.role),
      organizations: isUser
        ? await this.deps.people.organizationsOf(actor.id)
        : [{ ...org, role: actor.role }],
      pendingInvitations: isUser ? await this.deps.people.pendingFor(actor.id) : [],
      passwordChangeRequired: actor.passwordChangeRequired === true,
    };
  }
}
