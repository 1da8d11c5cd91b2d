import { randomUUID } from 'node:crypto';
import { eq } from 'drizzle-orm';
import type { AuditActor, AuditLog, AuditWho } from '../audit/service.js';
import { hashPassword } from '../auth/passwords.js';
import type { Db } from '../db/client.js';
import type { PinnedConsumer } from '../gateways/consumer-lookup.js';
import { conflict, notFound } from '../http/errors.js';
import {
  findOrganization,
  findOrganizationByName,
  lockOrganizationNames,
  updateOrganization,
  type OrganizationRow,
} from './queries.js';
import { organizations, orgMemberships, users } from '../db/schema.js';

export interface NewOrganization {
  name: string;
  adminEmail: string;
  /** Required when the admin is a new user; an existing user keeps their password. */
  adminPassword?: string;
  adminName?: string;
}

export class OrganizationSetupError extends Error {}

/**
 * Creates an organization with its first admin. Used by the operator command
 * `gatepool admin create-org`; the API's bootstrap creates only the very first one.
 */
export async function createOrganization(
  db: Db,
  audit: AuditLog,
  input: NewOrganization,
  actor: AuditActor = { type: 'system', name: 'gatepool admin' },
): Promise<{ orgId: string; userId: string; createdUser: boolean; passwordIgnored: boolean }> {
  const email = input.adminEmail.trim().toLowerCase();
  const name = input.name.trim();
  if (!name) throw new OrganizationSetupError('the organization name must not be empty.');
  const orgId = randomUUID();
  return db.transaction(async (tx) => {
    await lockOrganizationNames(tx);
    const namesake = await findOrganizationByName(tx, name);
    if (namesake) {
      throw new OrganizationSetupError(
        `an organization named "${namesake.name}" already exists (${namesake.id}); ` +
          'choose another name (names are compared ignoring case).',
      );
    }
    const [existing] = await tx.select({ id: users.id }).from(users).where(eq(users.email, email));
    let userId = existing?.id;
    const createdUser = !userId;
    if (!userId) {
      if (!input.adminPassword || input.adminPassword.length < 12) {
        throw new OrganizationSetupError(
          `${email} is a new user: set GATEPOOL_ADMIN_PASSWORD to a password of at least 12 characters.`,
        );
      }
      userId = randomUUID();
      await tx.insert(users).values({
        id: userId,
        email,
        name: input.adminName ?? email,
        passwordHash: await hashPassword(input.adminPassword),
        // The operator chose it: the new admin must replace it before doing anything else.
        passwordChangeRequired: true,
      });
    }
    await tx.insert(organizations).values({ id: orgId, name });
    await tx.insert(orgMemberships).values({ orgId, userId, role: 'admin' });
    await audit.record(
      actor,
      'organization.create',
      { name, adminEmail: email, createdUser },
      { orgId, ip: null, userAgent: null },
      tx,
    );
    // An existing user keeps their password: the operator must hear that a given one was unused.
    return { orgId, userId, createdUser, passwordIgnored: !createdUser && !!input.adminPassword };
  });
}

export interface OrganizationChange {
  name?: string;
  requireGatewayPools?: boolean;
}

export async function getOrganization(db: Db, orgId: string): Promise<OrganizationRow> {
  const org = await findOrganization(db, orgId);
  if (!org) throw notFound('Organization');
  return org;
}

/** Consumers named in a warning; the rest are counted. */
const PINNED_NAMED = 20;

/**
 * What turning requireGatewayPools on leaves as it was: consumers already pinned to a single
 * gateway keep it (the policy refuses new pins only), and an admin who turned it on to get
 * failover everywhere must hear which ones still have none.
 */
export function pinnedWarning(pinned: PinnedConsumer[]): string | undefined {
  if (!pinned.length) return undefined;
  const named = pinned
    .slice(0, PINNED_NAMED)
    .map((c) => `${c.kind} "${c.name}" (gateway "${c.gatewayName}")`);
  const more = pinned.length > PINNED_NAMED ? `, and ${pinned.length - PINNED_NAMED} more` : '';
  const n = pinned.length;
  return (
    `requireGatewayPools is on, but ${n} ${n === 1 ? 'consumer still uses' : 'consumers still use'} ` +
    `a single gateway and ${n === 1 ? 'keeps' : 'keep'} it until changed (no failover): ${named.join(', ')}${more}. ` +
    'Move them to a pool; pointing them at a single gateway again is now refused.'
  );
}

/** Renames the org or changes its policies; each actual change gets its own audit entry. */
export async function changeOrganization(
  deps: { db: Db; audit: AuditLog; pinned: (db: Db, orgId: string) => Promise<PinnedConsumer[]> },
  who: AuditWho,
  orgId: string,
  change: OrganizationChange,
): Promise<{ org: OrganizationRow; warnings: string[] }> {
  const org = await applyChange(deps, who, orgId, change);
  const warning = change.requireGatewayPools
    ? pinnedWarning(await deps.pinned(deps.db, orgId))
    : undefined;
  return { org, warnings: warning ? [warning] : [] };
}

function applyChange(
  deps: { db: Db; audit: AuditLog },
  who: AuditWho,
  orgId: string,
  change: OrganizationChange,
): Promise<OrganizationRow> {
  return deps.db.transaction(async (tx) => {
    const before = await findOrganization(tx, orgId, true);
    if (!before) throw notFound('Organization');
    if (change.name !== undefined) {
      // The same rule as at creation: people pick their organization by name (`login --org`,
      // the switcher), so two may not share one. Another org's id is not told.
      await lockOrganizationNames(tx);
      const namesake = await findOrganizationByName(tx, change.name.trim());
      if (namesake && namesake.id !== orgId)
        throw conflict(
          `Another organization is already named "${namesake.name}": choose another name (names are compared ignoring case).`,
        );
    }
    const after = await updateOrganization(tx, orgId, change);
    if (!after) throw notFound('Organization');
    if (change.name !== undefined && change.name !== before.name) {
      await deps.audit.record(
        who.actor,
        'organization.update',
        { from: before.name, to: after.name },
        who,
        tx,
      );
    }
    if (
      change.requireGatewayPools !== undefined &&
      change.requireGatewayPools !== before.requireGatewayPools
    ) {
      await deps.audit.record(
        who.actor,
        'organization.policy-update',
        {
          policy: 'requireGatewayPools',
          from: before.requireGatewayPools,
          to: after.requireGatewayPools,
        },
        who,
        tx,
      );
    }
    return after;
  });
}
