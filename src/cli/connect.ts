import { spawn } from 'node:child_process';
import type { Command } from 'commander';
import { PlatformClient, via, type AccessTarget } from '../client/api.js';
import { loadCredentials } from '../client/config.js';
import { ClientError } from '../client/errors.js';
import { Forwarder, parseListen, type ListenAddress } from '../client/forwarder.js';
import { runClientCommand } from './client-command.js';

interface ConnectOptions {
  listen: string;
}

function hostOf(a: ListenAddress): string {
  return a.host.includes(':') ? `[${a.host}]` : a.host;
}

/** The one line `gatepool connect` prints: where to point a client. */
export function readyLine(target: AccessTarget, local: ListenAddress): string {
  const address = `${hostOf(local)}:${local.port}`;
  const what = `${target.name} (${target.protocol} ${target.host}:${target.port} via ${via(target)})`;
  const hint =
    target.protocol === 'postgres'
      ? `; connect with: psql "host=${local.host} port=${local.port}"`
      : target.protocol === 'http'
        ? `; open http://${address}/`
        : '';
  return `Forwarding ${address} to ${what}${hint}`;
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
    .option(
      '--listen <address>',
      'local address, HOST:PORT or PORT (default: a free port on 127.0.0.1)',
      '127.0.0.1:0',
    )
    .action((name: string, command: string[], opts: ConnectOptions) =>
      runClientCommand('connect', async () => {
        if (command.length && !argv.includes('--'))
          throw new ClientError(
            `unexpected argument "${command[0]}": put a command to run after --, e.g. gatepool connect ${name} -- psql`,
          );
        const listen = parseListen(opts.listen);
        const { platform, token } = loadCredentials();
        // Asked once up front, so a wrong name, a missing permission or a bad token is one clear line.
        const target = await new PlatformClient(platform, token).request<AccessTarget>(
          'GET',
          `/api/v1/access-targets/${encodeURIComponent(name)}/connect`,
        );
        const forwarder = new Forwarder({
          platform,
          token,
          target: target.id,
          listen,
          report: (line) => process.stderr.write(`gatepool connect: ${line}\n`),
        });
        const local = await forwarder.start();
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
        const env: NodeJS.ProcessEnv = {
          ...process.env,
          GATEPOOL_CONNECT_HOST: local.host,
          GATEPOOL_CONNECT_PORT: String(local.port),
          ...(target.protocol === 'postgres'
            ? { PGHOST: local.host, PGPORT: String(local.port) }
            : {}),
        };
        const [file, ...args] = command as [string, ...string[]];
        const code = await new Promise<number>((resolve, reject) => {
          const child = spawn(file, args, { stdio: 'inherit', env });
          child.once('error', (err: NodeJS.ErrnoException) =>
            reject(
              new ClientError(
                err.code === 'ENOENT'
                  ? `command not found: ${file}`
                  : `cannot run ${file}: ${err.message}`,
              ),
            ),
          );
          // The child owns the terminal: Ctrl-C reaches it directly; we wait for it to exit.
          process.on('SIGINT', () => undefined);
          child.once('exit', (c, signal) =>
            resolve(c ?? (signal ? 128 + signalNumber(signal) : 1)),
          );
        });
        await forwarder.close();
        return code;
      }),
    );
}

function signalNumber(signal: NodeJS.Signals): number {
  const numbers: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };
  return numbers[signal] ?? 1;
}
