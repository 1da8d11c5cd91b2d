import { AuditLog } from '../audit/service.js';
import type { Config } from '../config.js';
import { readBackup, rootKeyOf, scheduleSnapshots, takeBackup } from '../db/backup.js';
import type { Database } from '../db/client.js';
import type { LocalAnswer, LocalRequest } from '../db/datadir-lock.js';
import { isUniqueViolation } from '../http/errors.js';
import { createOrganization, OrganizationSetupError } from '../orgs/service.js';

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
