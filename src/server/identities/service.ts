import { randomUUID } from 'node:crypto';
import type { AuditLog, AuditWho } from '../audit/service.js';
import type { Actor } from '../auth/actor.js';
import { newToken } from '../auth/tokens.js';
import type { Db } from '../db/client.js';
import { conflict, forbidden, isUniqueViolation, notFound } from '../http/errors.js';
import { pageOf } from '../http/schemas.js';
import { assertCanGrantRole, assertCanManageHolder } from '../rbac/grant.js';
import { holdRole } from '../rbac/roles-resolver.js';
import {
  deleteIdentity,
  findIdentity,
  identityNameTaken,
  insertIdentity,
  insertToken,
  listIdentities,
  listTokens,
  revokeToken,
  updateIdentity,
  type IdentityRow,
} from './queries.js';

export interface IdentityDeps {
  db: Db;
  audit: AuditLog;
}

export interface IssuedToken {
  id: string;
  name: string;
  token: string;
  expiresAt: Date;
}

const duplicate = (name: string | undefined) =>
  conflict(`An identity named "${name ?? ''}" already exists.`);
const sameIgnoringCase = (name: string) =>
  conflict(`An identity named "${name}" already exists (names are compared ignoring case).`);

/** Machine identities of an organization and their access tokens. */
export class IdentityService {
  constructor(private readonly deps: IdentityDeps) {}

  async list(orgId: string, cursor: string | undefined, limit: number) {
    return pageOf(await listIdentities(this.deps.db, orgId, cursor, limit + 1), limit);
  }

  get(orgId: string, id: string): Promise<IdentityRow> {
    return findIdentity(this.deps.db, orgId, id);
  }

  async create(
    actor: Actor,
    who: AuditWho,
    input: { name: string; role: string },
  ): Promise<IdentityRow> {
    await assertCanGrantRole(this.deps.db, actor, input.role);
    const id = randomUUID();
    const createdBy = {
      createdByType: who.actor.type,
      createdById: who.actor.id ?? null,
      createdByName: who.actor.name ?? null,
    };
    try {
      await this.deps.audit.audited(
        who,
        'identity.create',
        async (tx) => {
          await holdRole(tx, actor.orgId, input.role);
          const taken = await identityNameTaken(tx, actor.orgId, input.name);
          if (taken) throw taken === input.name ? duplicate(taken) : sameIgnoringCase(taken);
          await insertIdentity(tx, { id, orgId: actor.orgId, ...input, ...createdBy });
        },
        // The entry's actor is the createdBy the identity keeps.
        { identityId: id, name: input.name, role: input.role },
      );
    } catch (err) {
      if (isUniqueViolation(err)) throw duplicate(input.name);
      throw err;
    }
    return this.get(actor.orgId, id);
  }

  async update(
    actor: Actor,
    who: AuditWho,
    id: string,
    change: { name?: string; role?: string },
  ): Promise<IdentityRow> {
    const before = await this.get(actor.orgId, id);
    await assertCanManageHolder(this.deps.db, actor, before, 'identity');
    if (change.role) await assertCanGrantRole(this.deps.db, actor, change.role);
    try {
      await this.deps.audit.audited(
        who,
        'identity.update',
        async (tx) => {
          if (change.role) await holdRole(tx, actor.orgId, change.role);
          const taken = change.name
            ? await identityNameTaken(tx, actor.orgId, change.name, before.id)
            : undefined;
          if (taken) throw taken === change.name ? duplicate(taken) : sameIgnoringCase(taken);
          await updateIdentity(tx, actor.orgId, before.id, change);
        },
        { identityId: before.id, name: before.name, changes: change },
      );
    } catch (err) {
      if (isUniqueViolation(err)) throw duplicate(change.name);
      throw err;
    }
    return this.get(actor.orgId, before.id);
  }

  async remove(actor: Actor, who: AuditWho, id: string): Promise<void> {
    const before = await this.get(actor.orgId, id);
    await assertCanManageHolder(this.deps.db, actor, before, 'identity');
    await this.deps.audit.audited(
      who,
      'identity.delete',
      (tx) => deleteIdentity(tx, actor.orgId, before.id),
      { identityId: before.id, name: before.name },
    );
  }

  /** Mints an access token; the secret is returned here only, and stored hashed. */
  async issueToken(
    actor: Actor,
    who: AuditWho,
    identityId: string,
    input: { name: string; ttlSeconds: number },
  ): Promise<IssuedToken> {
    const identity = await this.get(actor.orgId, identityId);
    // A credential that can renew itself never ends: a leaked or forgotten token would outlive
    // every expiry. Someone else (a person, or another identity allowed to) must mint the next.
    if (actor.type === 'identity' && actor.id === identity.id) {
      throw forbidden(
        'An identity cannot mint access tokens for itself: ask an admin (or another identity allowed to edit identities) to issue the new token.',
        { reason: 'self_renewal' },
      );
    }
    await assertCanManageHolder(this.deps.db, actor, identity, 'identity');
    const { token, hash } = newToken('identity');
    const id = randomUUID();
    const expiresAt = new Date(Date.now() + input.ttlSeconds * 1000);
    await this.deps.audit.audited(
      who,
      'identity.token-create',
      (tx) =>
        insertToken(tx, {
          id,
          orgId: actor.orgId,
          identityId: identity.id,
          name: input.name,
          tokenHash: hash,
          expiresAt,
        }),
      {
        identityId: identity.id,
        identityName: identity.name,
        tokenId: id,
        expiresAt: expiresAt.toISOString(),
      },
    );
    return { id, name: input.name, token, expiresAt };
  }

  async listTokens(orgId: string, identityId: string, cursor: string | undefined, limit: number) {
    const identity = await this.get(orgId, identityId);
    return pageOf(await listTokens(this.deps.db, orgId, identity.id, cursor, limit + 1), limit);
  }

  async revokeToken(actor: Actor, who: AuditWho, identityId: string, tokenId: string) {
    const identity = await this.get(actor.orgId, identityId);
    await assertCanManageHolder(this.deps.db, actor, identity, 'identity');
    await this.deps.audit.audited(
      who,
      'identity.token-revoke',
      async (tx) => {
        if (!(await revokeToken(tx, actor.orgId, identity.id, tokenId)))
          throw notFound('Active access token');
      },
      { identityId: identity.id, identityName: identity.name, tokenId },
    );
  }
}
