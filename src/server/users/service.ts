import { randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { AuditLog, AuditWho } from '../audit/service.js';
import type { Actor } from '../auth/actor.js';
import { hashPassword } from '../auth/passwords.js';
import { hashToken } from '../auth/tokens.js';
import type { Db, Tx } from '../db/client.js';
import { conflict, forbidden, isUniqueViolation, notFound } from '../http/errors.js';
import { pageOf } from '../http/schemas.js';
import { assertCanGrantRole, assertCanManageHolder } from '../rbac/grant.js';
import { holdRole } from '../rbac/roles-resolver.js';
import { roleExists } from '../rbac/roles-resolver.js';
import {
  closeInvitation,
  deleteMembership,
  deleteUserIfUnattached,
  findMember,
  findUserByEmail,
  insertInvitation,
  insertMembership,
  insertUser,
  listMembers,
  listOrgInvitations,
  lockInvitation,
  lockMemberships,
  membershipsOf,
  orgName,
  otherAdminCount,
  pendingInvitationOf,
  pendingInvitationsFor,
  renameUser,
  setMemberRole,
  type InvitationRow,
  type MemberRow,
} from './queries.js';
import { deleteSessionsOf } from '../auth/sessions.js';
import { recordSessionEndings } from '../auth/session-endings.js';

/** How long an invitation stays open. */
export const INVITATION_TTL_MS = 7 * 86400_000;

export interface MemberDeps {
  db: Db;
  audit: AuditLog;
}

export interface NewMember {
  email: string;
  password: string;
  name?: string;
  role: string;
}

/** What the inviting organization sees of an invitation: never whether the account existed. */
export interface InvitationView {
  id: string;
  email: string;
  role: string;
  status: 'pending';
  invitedBy: { type: string; id: string | null; name: string | null };
  createdAt: Date;
  expiresAt: Date;
}

/** What the invited person sees. */
export interface PendingInvitation {
  id: string;
  organization: { id: string; name: string };
  role: string;
  invitedBy: string | null;
  createdAt: Date;
  expiresAt: Date;
}

function invitationView(r: InvitationRow): InvitationView {
  return {
    id: r.id,
    email: r.email,
    role: r.role,
    status: 'pending',
    invitedBy: { type: r.invitedByType, id: r.invitedById, name: r.invitedByName },
    createdAt: r.createdAt,
    expiresAt: r.expiresAt,
  };
}

/** An org must keep at least one admin, or nobody could ever administer it again. */
async function assertAnotherAdmin(tx: Tx, orgId: string, leavingUserId: string): Promise<void> {
  if ((await otherAdminCount(tx, orgId, leavingUserId)) === 0)
    throw conflict('This is the last admin of the organization: make someone else admin first.');
}

/**
 * The member as it is once the organization's memberships are locked: what was read before
 * the lock may have changed meanwhile (removed, or demoted by a concurrent request), and the
 * last-admin rule must judge the current role, not that earlier one.
 */
async function lockedMember(tx: Tx, orgId: string, userId: string): Promise<MemberRow> {
  if (!(await lockMemberships(tx, orgId))) throw notFound('Organization');
  const now = await findMember(tx, orgId, userId);
  if (!now) throw notFound('User');
  return now;
}

/**
 * People of an organization. Users are platform-wide, so adding one is always an invitation:
 * the answer must be the same whether or not the e-mail already has an account elsewhere.
 */
export class MemberService {
  constructor(private readonly deps: MemberDeps) {}

  async list(orgId: string, cursor: string | undefined, limit: number) {
    return pageOf(await listMembers(this.deps.db, orgId, cursor, limit + 1), limit);
  }

  async get(orgId: string, userId: string): Promise<MemberRow> {
    const row = await findMember(this.deps.db, orgId, userId);
    if (!row) throw notFound('User');
    return row;
  }

  /**
   * Invites a person. A new e-mail gets an account with the given password, and signing in
   * with it accepts; an existing account keeps its password and accepts explicitly. Either
   * way the caller gets the same pending invitation, with the same status and fields, and
   * the same work is done (the password is always hashed) so timing tells nothing either.
   */
  async invite(
    actor: Actor,
    who: AuditWho,
    input: NewMember,
  ): Promise<{ invitation: InvitationView; acceptCode: string }> {
    await assertCanGrantRole(this.deps.db, actor, input.role);
    const passwordHash = await hashPassword(input.password);
    const id = randomUUID();
    const acceptCode = randomBytes(9).toString('base64url');
    const now = Date.now();
    try {
      const row = await this.deps.audit.audited(
        who,
        'member.invite',
        async (tx) => {
          const existing = await findUserByEmail(tx, input.email);
          const userId = existing?.id ?? randomUUID();
          if (existing) {
            // Not an oracle: the caller can list its own members and invitations.
            if (await findMember(tx, actor.orgId, existing.id))
              throw conflict(`${input.email} is already a member of this organization.`);
            if (await pendingInvitationOf(tx, actor.orgId, existing.id))
              throw conflict(
                `${input.email} already has a pending invitation: revoke it to invite again.`,
              );
          } else {
            await insertUser(tx, {
              id: userId,
              email: input.email,
              name: input.name ?? input.email,
              passwordHash,
            });
          }
          const inv: InvitationRow = {
            id,
            orgId: actor.orgId,
            userId,
            email: input.email,
            role: input.role,
            createdUser: !existing,
            codeHash: hashToken(acceptCode),
            status: 'pending',
            invitedByType: who.actor.type,
            invitedById: who.actor.id ?? null,
            invitedByName: who.actor.name ?? null,
            createdAt: new Date(now),
            expiresAt: new Date(now + INVITATION_TTL_MS),
            respondedAt: null,
          };
          await holdRole(tx, actor.orgId, input.role);
          await insertInvitation(tx, inv);
          return inv;
        },
        { invitationId: id, email: input.email, role: input.role },
      );
      return { invitation: invitationView(row), acceptCode };
    } catch (err) {
      // Two admins inviting the same new e-mail at once: the loser sees what a retry would.
      if (isUniqueViolation(err))
        throw conflict(`${input.email} was just invited or added: list invitations and members.`);
      throw err;
    }
  }

  async update(
    actor: Actor,
    who: AuditWho,
    userId: string,
    change: { role?: string; name?: string },
  ): Promise<MemberRow> {
    const before = await this.get(actor.orgId, userId);
    await assertCanManageHolder(this.deps.db, actor, before, 'user');
    const { role, name } = change;
    if (role) await assertCanGrantRole(this.deps.db, actor, role);
    await this.deps.audit.audited(
      who,
      'member.update',
      async (tx) => {
        let previousRole = before.role;
        if (role) {
          const current = await lockedMember(tx, actor.orgId, before.id);
          previousRole = current.role;
          if (role !== current.role) {
            await holdRole(tx, actor.orgId, role);
            if (current.role === 'admin') await assertAnotherAdmin(tx, actor.orgId, current.id);
            await setMemberRole(tx, actor.orgId, current.id, role);
          }
        }
        if (name) await renameUser(tx, before.id, name);
        return previousRole;
      },
      (previousRole) => ({
        userId: before.id,
        email: before.email,
        ...(role ? { role, previousRole } : {}),
        ...(name ? { name } : {}),
      }),
    );
    return this.get(actor.orgId, before.id);
  }

  async remove(actor: Actor, who: AuditWho, userId: string): Promise<void> {
    const member = await this.get(actor.orgId, userId);
    await assertCanManageHolder(this.deps.db, actor, member, 'user');
    await this.deps.audit.audited(
      who,
      'member.remove',
      async (tx) => {
        const current = await lockedMember(tx, actor.orgId, member.id);
        if (current.role === 'admin') await assertAnotherAdmin(tx, actor.orgId, member.id);
        await deleteMembership(tx, actor.orgId, member.id);
        await recordSessionEndings(tx, 'removed', { userId: member.id, orgId: actor.orgId });
        await deleteSessionsOf(tx, actor.orgId, member.id);
        await deleteUserIfUnattached(tx, member.id);
      },
      { userId: member.id, email: member.email },
    );
  }

  async listInvitations(orgId: string, cursor: string | undefined, limit: number) {
    const page = pageOf(await listOrgInvitations(this.deps.db, orgId, cursor, limit + 1), limit);
    return { items: page.items.map(invitationView), nextCursor: page.nextCursor };
  }

  async revokeInvitation(actor: Actor, who: AuditWho, id: string): Promise<void> {
    const orgId = actor.orgId;
    await this.deps.audit.audited(
      who,
      'member.invitation-revoke',
      async (tx) => {
        const inv = await lockInvitation(tx, { id, orgId });
        if (!inv || inv.status !== 'pending') throw notFound('Pending invitation');
        // As for members: only whoever could have granted its role may take it back.
        await assertCanManageHolder(tx, actor, inv, 'invitation');
        await closeInvitation(tx, inv.id, 'revoked');
        // An account made only for this invitation and never used goes with it.
        if (inv.createdUser) await deleteUserIfUnattached(tx, inv.userId);
        return inv;
      },
      (inv) => ({ invitationId: inv.id, email: inv.email }),
    );
  }

  /** The caller's own open invitations (what the login answer and /me show). */
  async pendingFor(userId: string, now = new Date()): Promise<PendingInvitation[]> {
    const rows = await pendingInvitationsFor(this.deps.db, userId, now);
    return rows.map((r) => ({
      id: r.id,
      organization: { id: r.orgId, name: r.orgName },
      role: r.role,
      invitedBy: r.invitedByName,
      createdAt: r.createdAt,
      expiresAt: r.expiresAt,
    }));
  }

  /** Organizations the user belongs to, with the role in each. */
  async organizationsOf(userId: string) {
    const rows = await membershipsOf(this.deps.db, userId);
    return rows.map((m) => ({ id: m.orgId, name: m.orgName, role: m.role }));
  }

  /**
   * Accepts an invitation of `user` with the code its admin passed on: they become a member
   * with the invited role. The code, not the account, is the proof: accounts are named by
   * e-mail without proof of owning it, so one made by another org's admin must not be able to
   * join wherever that e-mail is invited.
   */
  async accept(
    user: { id: string; name: string },
    who: Omit<AuditWho, 'orgId'>,
    id: string,
    code: string,
  ): Promise<{ organization: { id: string; name: string }; role: string }> {
    const inv = await this.openInvitationOf(user.id, id);
    await this.deps.audit.audited(
      { ...who, orgId: inv.orgId },
      'member.join',
      async (tx) => this.join(tx, user.id, id, code),
      { invitationId: inv.id, userId: user.id, email: inv.email, role: inv.role },
    );
    return {
      organization: { id: inv.orgId, name: (await orgName(this.deps.db, inv.orgId)) ?? '' },
      role: inv.role,
    };
  }

  async decline(user: { id: string }, who: Omit<AuditWho, 'orgId'>, id: string): Promise<void> {
    const inv = await this.openInvitationOf(user.id, id);
    await this.deps.audit.audited(
      { ...who, orgId: inv.orgId },
      'member.invitation-decline',
      async (tx) => {
        const locked = await lockInvitation(tx, { id, userId: user.id });
        if (!locked || locked.status !== 'pending') throw notFound('Pending invitation');
        await closeInvitation(tx, locked.id, 'declined');
      },
      { invitationId: inv.id, userId: user.id, email: inv.email },
    );
  }

  /**
   * At sign-in: invitations that created this account are accepted by signing in with the
   * password their admin set, since the account exists only for them.
   */
  async acceptCreatedAccount(
    user: { id: string; email: string },
    who: Omit<AuditWho, 'orgId'>,
  ): Promise<void> {
    const open = (await pendingInvitationsFor(this.deps.db, user.id, new Date())).filter(
      (i) => i.createdUser,
    );
    for (const inv of open) {
      await this.deps.audit.audited(
        { ...who, orgId: inv.orgId },
        'member.join',
        (tx) => this.join(tx, user.id, inv.id),
        { invitationId: inv.id, userId: user.id, email: user.email, role: inv.role },
      );
    }
  }

  private async openInvitationOf(userId: string, id: string) {
    const [inv] = (await pendingInvitationsFor(this.deps.db, userId, new Date())).filter(
      (i) => i.id === id,
    );
    if (!inv) throw notFound('Pending invitation');
    return inv;
  }

  /** `code` undefined: the sign-in that created-account invitations accept with. */
  private async join(tx: Tx, userId: string, id: string, code?: string): Promise<void> {
    const inv = await lockInvitation(tx, { id, userId });
    if (!inv || inv.status !== 'pending' || inv.expiresAt.getTime() <= Date.now())
      throw notFound('Pending invitation');
    if (code !== undefined && !sameHash(hashToken(code), inv.codeHash))
      throw forbidden(
        'The invitation code is wrong: use the code the admin who invited you was given.',
      );
    if (!(await roleExists(tx, inv.orgId, inv.role)))
      throw conflict(
        `The role "${inv.role}" of this invitation no longer exists: ask the organization for a new invitation.`,
      );
    await insertMembership(tx, inv.orgId, userId, inv.role);
    await closeInvitation(tx, inv.id, 'accepted');
  }
}

function sameHash(a: string, b: string): boolean {
  return a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));
}
