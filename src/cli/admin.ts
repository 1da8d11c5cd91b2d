import type { Command } from 'commander';
import { configFromFlags, fail, platformModules } from './server.js';

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
        const [{ migrate, openConfiguredDatabase }, { AuditLog }, errors, orgs] = await Promise.all(
          [
            platformModules(),
            import('../server/audit/service.js'),
            import('../server/http/errors.js'),
            import('../server/orgs/service.js'),
          ],
        );
        const database = await openConfiguredDatabase(config).catch((err: Error) =>
          fail(err.message),
        );
        try {
          await migrate(database);
          const result = await orgs.createOrganization(database.db, new AuditLog(database.db), {
            name: opts.name,
            adminEmail: opts.adminEmail,
            adminPassword: opts.adminPassword ?? process.env.GATEPOOL_ADMIN_PASSWORD,
          });
          process.stdout.write(
            `created organization ${opts.name} (${result.orgId}); ${opts.adminEmail} is its admin` +
              `${result.createdUser ? ' (new user)' : ''}.\nLog in with organizationId ${result.orgId}.\n`,
          );
        } catch (err) {
          if (err instanceof orgs.OrganizationSetupError) fail(err.message);
          if (errors.isUniqueViolation(err))
            fail('that user is already a member of the new organization');
          throw err;
        } finally {
          await database.close();
        }
      },
    );
}
