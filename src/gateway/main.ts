#!/usr/bin/env node
/**
 * Standalone entry for the agent (`node dist/gateway/main.js gateway start …`): the same command
 * as `gatepool gateway start`, without loading the platform's modules.
 */
import { Command } from 'commander';
import { registerGatewayCommand } from '../cli/gateway.js';
import { GATEPOOL_VERSION } from '../protocol/tunnel.js';

const program = new Command('gatepool').version(GATEPOOL_VERSION).showHelpAfterError();
registerGatewayCommand(program);
program.parseAsync(process.argv).catch((error: unknown) => {
  process.stderr.write(`gatepool: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
