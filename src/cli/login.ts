import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { PlatformClient } from '../client/api.js';
import { normalizePlatformUrl, saveCredentials } from '../client/config.js';
import { ClientError } from '../client/errors.js';
import { runClientCommand } from './client-command.js';

interface LoginOptions {
  platform?: string;
  token?: string;
  email?: string;
}

type Writer = { _writeToOutput: (s: string) => void };

/**
 * Asks for email (unless given) and password on one readline interface (piped stdin works:
 * one line each). On a terminal the password is not echoed.
 */
async function askCredentials(
  email: string | undefined,
): Promise<{ email: string; password: string }> {
  const rl = createInterface({
    input: process.stdin,
    output: process.stderr,
    terminal: process.stdin.isTTY,
  });
  const lines = rl[Symbol.asyncIterator]();
  let muted = false;
  const writer = rl as unknown as Writer;
  const write = writer._writeToOutput.bind(rl);
  writer._writeToOutput = (s: string) => (muted ? undefined : write(s));
  const ask = async (question: string, hidden: boolean): Promise<string> => {
    process.stderr.write(question);
    muted = hidden && !!process.stdin.isTTY;
    const next = await lines.next();
    if (muted) process.stderr.write('\n');
    muted = false;
    if (next.done) throw new ClientError('login cancelled: no answer was given');
    return String(next.value).trim();
  };
  try {
    const mail = email ?? (await ask('Email: ', false));
    return { email: mail, password: await ask('Password: ', true) };
  } finally {
    rl.close();
  }
}

/** `gatepool login`: saves the platform URL and a token for `connect` and `targets`. */
export function registerLoginCommand(program: Command): void {
  program
    .command('login')
    .description(
      'Log in to a platform and save its URL and your token (mode 0600, $XDG_CONFIG_HOME/gatepool)',
    )
    .option(
      '--platform <url>',
      'platform URL, e.g. https://gatepool.example.com (or GATEPOOL_PLATFORM)',
    )
    .option('--token <token>', "a machine identity's access token, instead of email and password")
    .option('--email <email>', 'email to log in with (asked when not given)')
    .action((opts: LoginOptions) =>
      runClientCommand('login', async () => {
        const raw = opts.platform ?? process.env.GATEPOOL_PLATFORM;
        if (!raw)
          throw new ClientError('give the platform URL: --platform https://gatepool.example.com');
        const platform = normalizePlatformUrl(raw);
        let token = opts.token ?? '';
        if (!token) {
          const { email, password } = await askCredentials(opts.email);
          const res = await new PlatformClient(platform, undefined).request<{ token: string }>(
            'POST',
            '/api/v1/auth/login',
            { email, password },
          );
          token = res.token;
        }
        const me = await new PlatformClient(platform, token).request<{
          name: string;
          role: string;
          organization?: { name: string };
        }>('GET', '/api/v1/me');
        const path = saveCredentials({ platform, token });
        process.stdout.write(
          `Logged in to ${platform} as ${me.name} (${me.organization?.name ?? 'organization'}, role ${me.role}); saved to ${path}\n`,
        );
        return 0;
      }),
    );
}
