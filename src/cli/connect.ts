import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import type { Command } from 'commander';
import { isAccessTarget, PlatformClient, via, type AccessTarget } from '../client/api.js';
import { loadCredentials } from '../client/config.js';
import { ClientError } from '../client/errors.js';
import { Forwarder, parseListen, type ListenAddress } from '../client/forwarder.js';
import { runClientCommand } from './client-command.js';
import { isLoopback } from '../protocol/loopback.js';
import { formatAuthority } from '../protocol/tunnel.js';

interface ConnectOptions {
  listen?: string;
  verbose?: boolean;
}

const DEFAULT_LISTEN = '127.0.0.1:0';

function bracketed(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

/**
 * Where a local client connects to reach the listener: a wildcard address (0.0.0.0, ::) is
 * where one listens, not an address every client can connect to.
 */
export function connectHost(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '::1';
  return host;
}

/**
 * The warning for a listener others can reach, or undefined on a loopback address: whoever
 * connects to it is let through with the user's credential.
 */
export function exposureWarning(local: ListenAddress, target: string): string | undefined {
  if (isLoopback(local.host)) return undefined;
  return (
    `warning: listening on ${bracketed(local.host)}:${local.port}, which is not a loopback address: ` +
    `anyone who can reach it gets to ${target} with your access`
  );
}

/** The one line `gatepool connect` prints: where to point a client. */
export function readyLine(target: AccessTarget, local: ListenAddress): string {
  const address = `${bracketed(local.host)}:${local.port}`;
  const host = connectHost(local.host);
  const what = `${target.name} (${target.protocol} ${formatAuthority(target.host, target.port)} via ${via(target)})`;
  const hint =
    target.protocol === 'postgres'
      ? `; connect with: psql "host=${host} port=${local.port}"`
      : target.protocol === 'http'
        ? `; open http://${bracketed(host)}:${local.port}/`
        : '';
  return `Forwarding ${address} to ${what}${hint}`;
}

/** The exit code of a shell for a child killed by `signal`: 128 + its number. */
export function signalExitCode(signal: NodeJS.Signals): number {
  return 128 + (constants.signals[signal] ?? 0);
}

/** `gatepool connect TARGET [--listen ADDR] [-- CMD ARGS…]` (DESIGN §1, §6). */
export function registerConnectCommand(program: Command, argv: string[]): void {
  program
    .command('connect')
    .description(
      'Forward a local port to an access target through its gateway or pool; with `-- CMD ARGS…` ' +
        'run CMD with GATEPOOL_CONNECT_HOST/PORT (and PGHOST/PGPORT for postgres) set, and stop when it exits',
    )
    .argument('<target>', 'access target name or id (see `gatepool targets`)')
    .argument('[command...]', 'after --: a client to run against the forwarded port')
    // No commander default: it would print it again, as "127.0.0.1:0", after this text.
    .option(
      '--listen <address>',
      'local address, HOST:PORT or PORT (default: a free port on 127.0.0.1)',
    )
    .option(
      '-v, --verbose',
      'print a line on stderr for every connection opened and closed (set-up time, bytes, duration)',
    )
    .action((name: string, command: string[], opts: ConnectOptions) =>
      runClientCommand('connect', async () => {
        if (command.length && !argv.includes('--'))
          throw new ClientError(
            `unexpected argument "${command[0]}": put a command to run after --, e.g. gatepool connect ${name} -- psql`,
          );
        const listen = parseListen(opts.listen ?? DEFAULT_LISTEN);
        const { platform, token, tokenFrom } = loadCredentials();
        // Asked once up front, so a wrong name, a missing permission or a bad token is one clear line.
        const target = await new PlatformClient(platform, token, {
          tokenFrom,
        }).request<AccessTarget>(
          'GET',
          `/api/v1/access-targets/${encodeURIComponent(name)}/connect`,
          { valid: isAccessTarget },
        );
        const forwarder = new Forwarder({
          platform,
          token,
          tokenFrom,
          target: target.id,
          listen,
          verbose: opts.verbose,
          report: (line) => process.stderr.write(`gatepool connect: ${line}\n`),
        });
        const local = await forwarder.start();
        const warning = exposureWarning(local, target.name);
        if (warning) process.stderr.write(`gatepool connect: ${warning}\n`);
        if (!command.length) {
          process.stdout.write(readyLine(target, local) + '\n');
          await new Promise<void>((resolve) => {
            process.once('SIGINT', resolve);
            process.once('SIGTERM', resolve);
          });
          await forwarder.close();
          return 0;
        }
        process.stderr.write(readyLine(target, local) + '\n');
        const host = connectHost(local.host);
        const env: NodeJS.ProcessEnv = {
          ...process.env,
          GATEPOOL_CONNECT_HOST: host,
          GATEPOOL_CONNECT_PORT: String(local.port),
          ...(target.protocol === 'postgres' ? { PGHOST: host, PGPORT: String(local.port) } : {}),
        };
        const [file, ...args] = command as [string, ...string[]];
        const code = await new Promise<number>((resolve, reject) => {
          const child = spawn(file, args, { stdio: 'inherit', env });
          child.once('error', (err: NodeJS.ErrnoException) =>
            reject(
              // 127 and 126, as a shell answers, so a script tells "no such client" (or "not
              // executable") apart from the client's own failure.
              err.code === 'ENOENT'
                ? new ClientError(`command not found: ${file}`, 127)
                : new ClientError(`cannot run ${file}: ${err.message}`, 126),
            ),
          );
          // The child owns the terminal: Ctrl-C reaches it directly; we wait for it to exit.
          process.on('SIGINT', () => undefined);
          child.once('exit', (c, signal) => resolve(c ?? (signal ? signalExitCode(signal) : 1)));
        });
        await forwarder.close();
        return code;
      }),
    );
}
