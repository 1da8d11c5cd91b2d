import type { Command } from 'commander';
import { AuditLog } from '../server/audit/service.js';
import { migrate } from '../server/db/migrate.js';
import { isUniqueViolation } from '../server/http/errors.js';
import { createOrganization, OrganizationSetupError } from '../server/orgs/service.js';
import { openConfiguredDatabase } from '../server/server.js';
import { configFromFlags, fail } from './server.js';

export function registerAdminCommands(program: Command): void {
  const admin = program.command('admin').description('operator tasks run against the database');

  admin
    .command('create-org')
    .description(
      'create another organization with its first admin (an existing user may be reused)',
    )
    .requiredOption('--name <name>', 'organization name')
    .requiredOption('--admin-email <email>', 'email of the admin (new or existing user)')
    .option('--admin-password <password>', 'password for a new user (or GATEPOOL_ADMIN_PASSWORD)')
    .option('--data-dir <dir>', 'embedded database directory (GATEPOOL_DATA_DIR)')
    .option('--database-url <url>', 'PostgreSQL URL (DATABASE_URL)')
    .action(
      async (
        opts: { name: string; adminEmail: string; adminPassword?: string } & Record<
          string,
          unknown
        >,
      ) => {
        const config = configFromFlags(opts);
        const database = await openConfiguredDatabase(config).catch((err: Error) =>
          fail(err.message),
        );
        try {
          await migrate(database);
          const result = await createOrganization(database.db, new AuditLog(database.db), {
            name: opts.name,
            adminEmail: opts.adminEmail,
            adminPassword: opts.adminPassword ?? process.env.GATEPOOL_ADMIN_PASSWORD,
          });
          process.stdout.write(
            `created organization ${opts.name} (${result.orgId}); ${opts.adminEmail} is its admin` +
              `${result.createdUser ? ' (new user)' : ''}.\nLog in with organizationId ${result.orgId}.\n`,
          );
        } catch (err) {
          if (err instanceof OrganizationSetupError) fail(err.message);
          if (isUniqueViolation(err)) fail('that user is already a member of the new organization');
          throw err;
        } finally {
          await database.close();
        }
      },
    );
}
