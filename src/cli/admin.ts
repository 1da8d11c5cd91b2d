import { existsSync } from 'node:fs';
import { Option, type Command } from 'commander';
import type { Database } from '../server/db/client.js';
import type { Config } from '../server/config.js';
import type { AddAdminResult, CreateOrgResult } from '../server/local-admin/service.js';
import { embeddedOrServer } from './backup.js';
import { configFromFlags, fail, platformModules, snapshotFirst } from './server.js';

/**
 * Runs an operator change against the configured database: PostgreSQL directly (the server may
 * run meanwhile), the embedded one directly when no server holds it, else through the server
 * holding it (its data directory socket, `op`), which then forgets its cached callers.
 */
async function runOperatorChange<T>(
  config: Config,
  op: { op: string; [key: string]: unknown },
  what: string,
  change: (database: Database) => Promise<T>,
): Promise<T> {
  const offline = async (database: Database) => {
    const { migrate } = await platformModules();
    await snapshotFirst(database, config);
    await migrate(database);
    return change(database);
  };
  if (config.databaseUrl) {
    const { openConfiguredDatabase } = await platformModules();
    const database = await openConfiguredDatabase(config).catch((err: Error) => fail(err.message));
    try {
      return await offline(database);
    } finally {
      await database.close();
    }
  }
  // Opening a missing embedded database creates an empty one: run from the wrong directory,
  // the change would land in a database no platform uses.
  const { pgliteDir } = await import('../server/db/embedded.js');
  if (!existsSync(pgliteDir(config.dataDir)))
    fail(
      `there is no embedded database in ${config.dataDir} (no ${pgliteDir(config.dataDir)}): ` +
        `point GATEPOOL_DATA_DIR (or --data-dir) at the platform's data directory, or set DATABASE_URL`,
    );
  const { request } = await import('../server/db/datadir-lock.js');
  return embeddedOrServer(config, offline, async (socketPath) => {
    const answer = await request(socketPath, op, 60_000).catch((err: Error) =>
      // The request reached it: a frozen server still carries it out once it resumes.
      fail(
        `the server holding ${config.dataDir} did not answer: ${err.message}. ` +
          `It may still ${what} once it resumes; running this again is safe`,
      ),
    );
    return answer.body as T;
  });
}

export function registerAdminCommands(program: Command): void {
  const admin = program.command('admin').description('operator tasks run against the database');

  admin
    .command('create-org')
    .description(
      'create another organization with its first admin (an existing user may be reused; ' +
        'a new one gets the password in GATEPOOL_ADMIN_PASSWORD)',
    )
    .requiredOption('--name <name>', 'organization name')
    .requiredOption('--admin-email <email>', 'email of the admin (new or existing user)')
    // Kept hidden so that old scripts hear why it went away instead of "unknown option".
    .addOption(new Option('--admin-password <password>').hideHelp())
    .option('--data-dir <dir>', 'embedded database directory (GATEPOOL_DATA_DIR)')
    .option('--database-url <url>', 'PostgreSQL URL (DATABASE_URL)')
    .action(
      async (
        opts: { name: string; adminEmail: string; adminPassword?: string } & Record<
          string,
          unknown
        >,
      ) => {
        if (opts.adminPassword !== undefined)
          fail(
            '--admin-password is not accepted: a password on the command line shows in the ' +
              'process list. Set GATEPOOL_ADMIN_PASSWORD in the environment instead.',
          );
        const config = configFromFlags(opts);
        const input = {
          name: opts.name,
          adminEmail: opts.adminEmail,
          adminPassword: process.env.GATEPOOL_ADMIN_PASSWORD || undefined,
        };
        const [{ createOrgForOperator }, { request }] = await Promise.all([
          import('../server/local-admin/service.js'),
          import('../server/db/datadir-lock.js'),
        ]);
        const offline = async (database: Database) => {
          const { migrate } = await platformModules();
          await snapshotFirst(database, config);
          await migrate(database);
          return createOrgForOperator(database, input);
        };
        let result: CreateOrgResult;
        if (config.databaseUrl) {
          // PostgreSQL: transactional and shared by design, the server may run meanwhile.
          const { openConfiguredDatabase } = await platformModules();
          const database = await openConfiguredDatabase(config).catch((err: Error) =>
            fail(err.message),
          );
          try {
            result = await offline(database);
          } finally {
            await database.close();
          }
        } else {
          // Opening a missing embedded database creates an empty one: run from the wrong
          // directory, the organization would land in a database no platform uses.
          const { pgliteDir } = await import('../server/db/embedded.js');
          if (!existsSync(pgliteDir(config.dataDir)))
            fail(
              `there is no embedded database in ${config.dataDir} (no ${pgliteDir(config.dataDir)}): ` +
                `point GATEPOOL_DATA_DIR (or --data-dir) at the platform's data directory, or set DATABASE_URL`,
            );
          // Embedded: only one process may open it; a running server does it for us.
          result = await embeddedOrServer(config, offline, async (socketPath) => {
            const answer = await request(socketPath, { op: 'create-org', ...input }, 60_000).catch(
              (err: Error) =>
                // The request reached it: a frozen server still carries it out once it resumes.
                fail(
                  `the server holding ${config.dataDir} did not answer: ${err.message}. ` +
                    'It may still create the organization once it resumes; running this again ' +
                    'is safe (an organization of that name is refused as existing)',
                ),
            );
            return answer.body as CreateOrgResult;
          });
        }
        if (!result.ok) fail(result.error ?? 'the organization was not created');
        const email = opts.adminEmail.trim().toLowerCase();
        const existing = result.createdUser
          ? ''
          : `${email} already exists: their password is unchanged` +
            (result.passwordIgnored ? ' (GATEPOOL_ADMIN_PASSWORD was ignored)' : '') +
            '.\n';
        process.stdout.write(
          existing +
            `created organization ${opts.name.trim()} (${result.orgId}); ${email} is its admin` +
            `${result.createdUser ? ' (new user)' : ''}.\nLog in with organizationId ${result.orgId}.\n`,
        );
      },
    );

  admin
    .command('add-admin')
    .description(
      'make a person admin of an existing organization (e.g. one left without an admin): ' +
        'a member is promoted, an existing user added; a new one gets the password in ' +
        'GATEPOOL_ADMIN_PASSWORD and must change it at first sign-in',
    )
    .requiredOption('--org <name-or-id>', 'the organization, by name (any case) or id')
    .requiredOption('--email <email>', 'email of the person (new or existing user)')
    .option('--data-dir <dir>', 'embedded database directory (GATEPOOL_DATA_DIR)')
    .option('--database-url <url>', 'PostgreSQL URL (DATABASE_URL)')
    .action(async (opts: { org: string; email: string } & Record<string, unknown>) => {
      const config = configFromFlags(opts);
      const input = {
        org: opts.org,
        email: opts.email,
        password: process.env.GATEPOOL_ADMIN_PASSWORD || undefined,
      };
      const { addAdminForOperator } = await import('../server/local-admin/service.js');
      const result = await runOperatorChange<AddAdminResult>(
        config,
        { op: 'add-admin', ...input },
        'make the admin',
        (database) => addAdminForOperator(database, input),
      );
      if (!result.ok) fail(result.error ?? 'nobody was made admin');
      const email = opts.email.trim().toLowerCase();
      const how =
        result.outcome === 'already-admin'
          ? `${email} is already an admin of ${result.orgName}; nothing changed`
          : result.outcome === 'promoted'
            ? `${email} (was ${result.previousRole ?? 'a member'}) is now an admin of ${result.orgName}`
            : `${email} is now an admin of ${result.orgName}` +
              (result.createdUser
                ? ' (new user: the password in GATEPOOL_ADMIN_PASSWORD must be changed at first sign-in)'
                : '');
      process.stdout.write(
        (result.passwordIgnored
          ? `${email} already exists: their password is unchanged (GATEPOOL_ADMIN_PASSWORD was ignored).\n`
          : '') + `${how} (${result.orgId}).\n`,
      );
    });
}
