import { Command } from 'commander';
import { registerAdminCommands } from './admin.js';
import { registerLicenseCommands } from './license.js';
import { registerServerCommands } from './server.js';

export async function main(argv: string[]): Promise<void> {
  const program = new Command('gatepool')
    .description('Reach resources in private networks through gateways and gateway pools')
    .version('0.1.0')
    .showHelpAfterError();
  registerServerCommands(program);
  registerLicenseCommands(program);
  registerAdminCommands(program);
  // The gateway agent lives in its own module so the agent stays small on its hosts.
  const { registerGatewayCommand } = await import('./gateway.js').catch(() => ({ registerGatewayCommand: undefined }));
  registerGatewayCommand?.(program);
  await program.parseAsync(argv);
}
