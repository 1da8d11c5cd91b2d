import { Command } from 'commander';
import { registerAdminCommands } from './admin.js';
import { registerBackupCommands } from './backup.js';
import { registerConnectCommand } from './connect.js';
import { registerGatewayCommand } from './gateway.js';
import { registerLicenseCommands } from './license.js';
import { registerLoginCommand } from './login.js';
import { registerServerCommands } from './server.js';
import { registerSessionCommands } from './session.js';
import { registerTargetsCommand } from './targets.js';

export async function main(argv: string[]): Promise<void> {
  const program = new Command('gatepool')
    .description('Reach resources in private networks through gateways and gateway pools')
    .version('0.1.0')
    .showHelpAfterError();
  registerServerCommands(program);
  registerLicenseCommands(program);
  registerAdminCommands(program);
  registerBackupCommands(program);
  registerGatewayCommand(program);
  registerLoginCommand(program);
  registerSessionCommands(program);
  registerConnectCommand(program, argv);
  registerTargetsCommand(program);
  await program.parseAsync(argv);
}
