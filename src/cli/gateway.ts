import { Option, type Command } from 'commander';
import {
  DEFAULT_STATE_DIR,
  EXIT_REVOKED,
  exitMessage,
  runGateway,
  type GatewayStartOptions,
} from '../gateway/run.js';

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** A repeatable flag; `fallback` says in --help what applies when it is not given. */
function repeatable(flags: string, description: string, fallback: string): Option {
  return new Option(flags, description).argParser(collect).default([], fallback);
}

/** `gatepool gateway start …` (DESIGN §1). */
export function registerGatewayCommand(program: Command): void {
  const gateway = program
    .command('gateway')
    .description('Run a gateway: an agent inside a private network that dials out to the platform');
  gateway
    .command('start')
    .description(
      'Enroll on first run (key generated here, never sent), then keep a tunnel to the platform ' +
        'and serve streams to allowed targets. SIGTERM/SIGINT drains and exits 0; a gateway ' +
        `deleted or revoked on the platform exits ${EXIT_REVOKED}. Allow rules, labels, pools ` +
        'and the platform URL are remembered in the state directory; flags given later replace ' +
        'them and are saved.',
    )
    .option(
      '--config <file>',
      "settings file, JSON or YAML (.yaml/.yml), keyed by these flags' long names " +
        '(allow, label(s), pool(s), platform, token, name, state-dir, drain-timeout); flags win',
    )
    .option(
      '--platform <url>',
      'platform base URL, e.g. https://gatepool.example.com (first run; a new one later asks ' +
        'that platform for its tunnel address: moving the platform)',
    )
    .option(
      '--token <token>',
      'single-use enrollment token (first run; ignored later). It shows in the process list: ' +
        'prefer GATEPOOL_ENROLL_TOKEN or --token-file',
    )
    .option('--token-file <file>', 'read the enrollment token from this file (first run)')
    .option('--name <name>', 'gateway name (first run)')
    .addOption(
      repeatable(
        '--allow <rule>',
        'allowed target, repeatable: host:port, IP:port, CIDR:port, [IPv6]:port, port may be ' +
          'a-b or *; "*" allows everything',
        'the rules of the last run, else nothing',
      ),
    )
    .addOption(
      repeatable(
        '--label <key=value>',
        'label reported to the platform, repeatable',
        'those of the last run',
      ),
    )
    .addOption(
      repeatable('--pool <name>', 'gateway pool to join at enrollment, repeatable', 'none'),
    )
    .option(
      '--state-dir <dir>',
      `where the key, certificate and settings are kept (0700; default ${DEFAULT_STATE_DIR})`,
    )
    .option(
      '--drain-timeout <seconds>',
      'how long open streams may finish after SIGTERM (default 30)',
    )
    .option(
      '--insecure-platform-tls',
      'do not verify the platform URL certificate during enrollment',
    )
    .action(async (options: GatewayStartOptions) => {
      try {
        process.exitCode = await runGateway(options);
      } catch (error) {
        const message = exitMessage(error);
        if (message === null) throw error;
        process.stderr.write(`gatepool gateway: ${message}\n`);
        process.exitCode = 1;
      }
      // Timers of a finished agent must not keep the process alive; exit with the set code.
      process.exit();
    });
}
