import { randomUUID } from 'node:crypto';
import { and, eq } from 'drizzle-orm';
import { AuditLog } from '../audit/service.js';
import { hashPassword } from '../auth/passwords.js';
import type { Config } from '../config.js';
import { readBackup, rootKeyOf, scheduleSnapshots, takeBackup } from '../db/backup.js';
import type { Database } from '../db/client.js';
import type { LocalAnswer, LocalRequest } from '../db/datadir-lock.js';
import { orgMemberships, users } from '../db/schema.js';
import { isUniqueViolation } from '../http/errors.js';
import { findOrganization, findOrganizationByName } from '../orgs/queries.js';
import { createOrganization, OrganizationSetupError } from '../orgs/service.js';
import { lockMemberships } from '../users/queries.js';

/**
 * Operator commands that need the embedded database while the server holds it: the server
 * answers them over its data directory socket (see db/datadir-lock.ts), in its own process, so
 * only one process ever opens the files. The same functions run in the CLI when no server does.
 */

/** What this module logs with (the platform's pino logger fits). */
export interface LocalAdminLog {
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
  child(bindings: Record<string, unknown>): LocalAdminLog;
}

export interface CreateOrgInput {
  name: string;
  adminEmail: string;
  adminPassword?: string;
}

export type CreateOrgResult =
  | { ok: true; orgId: string; createdUser: boolean; passwordIgnored: boolean }
  | { ok: false; error: string };

export async function createOrgForOperator(
  database: Database,
  input: CreateOrgInput,
): Promise<CreateOrgResult> {
  try {
    const r = await createOrganization(database.db, new AuditLog(database.db), input);
    return {
      ok: true,
      orgId: r.orgId,
      createdUser: r.createdUser,
      passwordIgnored: r.passwordIgnored,
    };
  } catch (err) {
    if (err instanceof OrganizationSetupError) return { ok: false, error: err.message };
    if (isUniqueViolation(err))
      return { ok: false, error: 'that user is already a member of the new organization' };
    throw err;
  }
}

export interface AddAdminInput {
  /** The organization's name (any case) or id. */
  org: string;
  email: string;
  /** Only for a new e-mail: the operator's choice, which its person must replace at sign-in. */
  password?: string;
}

export type AddAdminResult =
  | {
      ok: true;
      orgId: string;
      orgName: string;
      outcome: 'added' | 'promoted' | 'already-admin';
      createdUser: boolean;
      passwordIgnored: boolean;
      previousRole?: string;
    }
  | { ok: false; error: string };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The operator's way back into an organization no admin can administer any more (its last
 * admin left, or lost the role): makes a person its admin — an existing member promoted, an
 * existing account added, or a new account with the operator's password, to be replaced at
 * first sign-in. Audited in that organization as `organization.admin-add`.
 */
export async function addAdminForOperator(
  database: Database,
  input: AddAdminInput,
): Promise<AddAdminResult> {
  const email = input.email.trim().toLowerCase();
  const ref = input.org.trim();
  if (!email || !ref) return { ok: false, error: 'the organization and the e-mail are required' };
  const audit = new AuditLog(database.db);
  const passwordHash =
    input.password && input.password.length >= 12 ? await hashPassword(input.password) : undefined;
  return database.db.transaction(async (tx): Promise<AddAdminResult> => {
    const org =
      (UUID.test(ref) ? await findOrganization(tx, ref) : undefined) ??
      (await findOrganizationByName(tx, ref));
    if (!org) return { ok: false, error: `there is no organization "${ref}"` };
    // The same serialization as the API's member changes: no removal runs meanwhile.
    await lockMemberships(tx, org.id);
    const [user] = await tx.select().from(users).where(eq(users.email, email));
    let userId = user?.id;
    let outcome: 'added' | 'promoted' | 'already-admin' = 'added';
    let previousRole: string | undefined;
    if (!userId) {
      if (!passwordHash)
        return {
          ok: false,
          error: `${email} is a new user: set GATEPOOL_ADMIN_PASSWORD to a password of at least 12 characters`,
        };
      userId = randomUUID();
      await tx.insert(users).values({
        id: userId,
        email,
        name: email,
        passwordHash,
        passwordChangeRequired: true,
      });
    } else {
      const [membership] = await tx
        .select({ role: orgMemberships.role })
        .from(orgMemberships)
        .where(and(eq(orgMemberships.orgId, org.id), eq(orgMemberships.userId, userId)));
      previousRole = membership?.role;
      if (previousRole === 'admin') outcome = 'already-admin';
      else if (previousRole) outcome = 'promoted';
    }
    if (outcome === 'promoted')
      await tx
        .update(orgMemberships)
        .set({ role: 'admin' })
        .where(and(eq(orgMemberships.orgId, org.id), eq(orgMemberships.userId, userId)));
    else if (outcome === 'added')
      await tx.insert(orgMemberships).values({ orgId: org.id, userId, role: 'admin' });
    if (outcome !== 'already-admin')
      await audit.record(
        { type: 'system', name: 'gatepool admin' },
        'organization.admin-add',
        { email, userId, createdUser: !user, ...(previousRole ? { previousRole } : {}) },
        { orgId: org.id, ip: null, userAgent: null },
        tx,
      );
    return {
      ok: true,
      orgId: org.id,
      orgName: org.name,
      outcome,
      createdUser: !user,
      passwordIgnored: !!user && !!input.password,
      ...(previousRole ? { previousRole } : {}),
    };
  });
}

/** A backup file's bytes and what to tell the operator about it. */
export async function backupForOperator(
  database: Database,
  config: Pick<Config, 'dataDir' | 'encryptionKey'>,
): Promise<{ bytes: Buffer; rootKeyIncluded: boolean; migrations: number }> {
  const bytes = await takeBackup(database, rootKeyOf(config.dataDir, !!config.encryptionKey));
  const { manifest } = readBackup(bytes, 'the new backup');
  return {
    bytes,
    rootKeyIncluded: manifest.rootKeyIncluded,
    migrations: manifest.migrations.length,
  };
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

async function handle(
  database: Database,
  config: Config,
  req: LocalRequest,
  forgetCredentials: () => void,
): Promise<LocalAnswer> {
  switch (req.op) {
    case 'create-org': {
      const name = str(req.name);
      const adminEmail = str(req.adminEmail);
      if (!name || !adminEmail)
        return { body: { ok: false, error: 'name and adminEmail are required' } };
      try {
        return {
          body: await createOrgForOperator(database, {
            name,
            adminEmail,
            adminPassword: str(req.adminPassword),
          }),
        };
      } finally {
        // Users and memberships changed: the API's cached callers go, as after any API change.
        forgetCredentials();
      }
    }
    case 'add-admin': {
      const org = str(req.org);
      const email = str(req.email);
      if (!org || !email) return { body: { ok: false, error: 'org and email are required' } };
      try {
        return {
          body: await addAdminForOperator(database, { org, email, password: str(req.password) }),
        };
      } finally {
        forgetCredentials();
      }
    }
    case 'backup': {
      const b = await backupForOperator(database, config);
      return {
        body: { ok: true, rootKeyIncluded: b.rootKeyIncluded, migrations: b.migrations },
        data: b.bytes,
      };
    }
    default:
      return { body: { ok: false, error: `unknown request "${req.op}"` } };
  }
}

/**
 * Starts what the platform does for its embedded database beyond serving the API: answering
 * operator commands on the data directory socket and scheduled snapshots. Returns the stop
 * function (waits for a snapshot in progress). Nothing to do on PostgreSQL.
 * `forgetCredentials` clears the API's credential cache after a command that changes people.
 */
export function startLocalAdmin(
  database: Database,
  config: Config,
  log: LocalAdminLog,
  forgetCredentials: () => void,
): () => Promise<void> {
  if (!database.lock) return async () => undefined;
  const alog = log.child({ component: 'local-admin' });
  database.lock.serve(async (req) => {
    alog.info({ op: req.op }, 'operator command over the data directory socket');
    return handle(database, config, req, forgetCredentials);
  });
  return scheduleSnapshots(
    database,
    config.dataDir,
    rootKeyOf(config.dataDir, !!config.encryptionKey),
    { intervalMs: config.backupIntervalMs, keep: config.backupKeep },
    alog,
  );
}
