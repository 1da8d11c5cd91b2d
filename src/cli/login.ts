import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { isObject, PlatformClient } from '../client/api.js';
import { normalizePlatformUrl, saveCredentials } from '../client/config.js';
import { ClientError, PlatformRefusal } from '../client/errors.js';
import { runClientCommand } from './client-command.js';

interface LoginOptions {
  platform?: string;
  token?: string;
  email?: string;
  org?: string;
}

interface OrgRef {
  id: string;
  name: string;
}

interface Me {
  name: string;
  role: string;
  organization?: OrgRef;
  organizations?: (OrgRef & { role: string })[];
}

/** What a password login and an organization switch answer. */
interface SignedIn {
  token: string;
  expiresAt?: string;
  passwordChangeRequired?: boolean;
}

/** The platform's rule for a new password (POST /api/v1/auth/password checks it again). */
const MIN_PASSWORD = 12;
const MAX_PASSWORD = 256;
const NEW_PASSWORD_TRIES = 3;

const expiryOf = (s: SignedIn): string | undefined =>
  typeof s.expiresAt === 'string' && !Number.isNaN(Date.parse(s.expiresAt))
    ? s.expiresAt
    : undefined;

type Writer = { _writeToOutput: (s: string) => void };

interface Prompter {
  ask(question: string, hidden: boolean): Promise<string>;
  close(): void;
}

/**
 * Questions on one readline interface for the whole login (piped stdin works: one line each).
 * On a terminal hidden answers are not echoed.
 */
function prompter(): Prompter {
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
    // A terminal echoes the user's Enter except for the hidden password; a pipe echoes
    // nothing, so the next prompt or error would otherwise run on after this one.
    if (muted || !process.stdin.isTTY) process.stderr.write('\n');
    muted = false;
    if (next.done) throw new ClientError('login cancelled: no answer was given');
    return String(next.value).trim();
  };
  return { ask, close: () => rl.close() };
}

/**
 * The password the person signed in with was chosen by someone else (the admin who invited
 * them): the session can do nothing else until they choose their own. On a terminal it is
 * asked for here (twice); elsewhere (a script, a pipe) there is nobody to choose one, so the
 * session is ended and nothing saved: a saved login that every command would refuse helps no
 * one, and the one line says what to do.
 */
async function chooseOwnPassword(
  platform: string,
  token: string,
  current: string,
  prompt: Prompter,
): Promise<void> {
  const session = new PlatformClient(platform, token);
  if (!process.stdin.isTTY) {
    await session.request('POST', '/api/v1/auth/logout', { noContent: true }).catch(() => {});
    throw new ClientError(
      'your password was set by the admin who invited you: change it first, in the web UI or ' +
        'with `gatepool login` on a terminal; nothing was saved',
    );
  }
  process.stderr.write(
    'Your password was set by the admin who invited you: choose your own before going on.\n',
  );
  for (let tries = 1; ; tries++) {
    const next = await prompt.ask(`New password (at least ${MIN_PASSWORD} characters): `, true);
    const again = await prompt.ask('New password again: ', true);
    const problem =
      next.length < MIN_PASSWORD
        ? `the new password is shorter than ${MIN_PASSWORD} characters`
        : next.length > MAX_PASSWORD
          ? `the new password is longer than ${MAX_PASSWORD} characters`
          : next !== again
            ? 'the two new passwords differ'
            : next === current
              ? 'the new password is the one the admin set: choose another'
              : undefined;
    if (!problem) {
      await session.request('POST', '/api/v1/auth/password', {
        body: { currentPassword: current, newPassword: next },
        valid: (v) => isObject(v),
      });
      process.stderr.write('Password changed.\n');
      return;
    }
    if (tries >= NEW_PASSWORD_TRIES)
      throw new ClientError(`${problem}; the password was not changed and nothing was saved`);
    process.stderr.write(`${problem}; try again.\n`);
  }
}

/** Replaces the generic "not logged in: run gatepool login" line, which is circular here. */
async function refusedAs<T>(status: number, message: string, request: Promise<T>): Promise<T> {
  try {
    return await request;
  } catch (err) {
    if (err instanceof PlatformRefusal && err.status === status) throw new ClientError(message);
    throw err;
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
    .option(
      '--org <name-or-id>',
      'the organization to work in, for a person in several (default: the one they joined first)',
    )
    .action((opts: LoginOptions) =>
      runClientCommand('login', async () => {
        // An empty --token (an unset variable in a script) must not turn into a prompt.
        if (opts.token !== undefined && !opts.token.trim())
          throw new ClientError(
            "--token is empty: give the machine identity's access token, or leave --token out to log in with email and password",
          );
        const raw = opts.platform ?? process.env.GATEPOOL_PLATFORM;
        if (!raw)
          throw new ClientError('give the platform URL: --platform https://gatepool.example.com');
        const platform = normalizePlatformUrl(raw);
        // Checked before asking anything, so a wrong URL is not found out after typing a password.
        await new PlatformClient(platform, undefined, { timeoutMs: 10_000 })
          .request('GET', '/healthz', { valid: (v) => isObject(v) && typeof v.status === 'string' })
          .catch((err: unknown) => {
            if (!(err instanceof PlatformRefusal)) throw err;
            throw new ClientError(
              `${platform} does not answer as a gatepool platform (GET /healthz: HTTP ${err.status}): check --platform`,
            );
          });
        let token = opts.token?.trim() ?? '';
        // Known for a password login's session; an access token's expiry is not told to it.
        let expiresAt: string | undefined;
        if (!token) {
          const prompt = prompter();
          try {
            const email = opts.email ?? (await prompt.ask('Email: ', false));
            const password = await prompt.ask('Password: ', true);
            const res = await refusedAs(
              401,
              'email or password is incorrect; nothing was saved',
              new PlatformClient(platform, undefined).request<SignedIn>(
                'POST',
                '/api/v1/auth/login',
                {
                  body: { email, password },
                  valid: (v) => isObject(v) && typeof v.token === 'string' && v.token !== '',
                },
              ),
            );
            token = res.token;
            expiresAt = expiryOf(res);
            if (res.passwordChangeRequired === true)
              await chooseOwnPassword(platform, token, password, prompt);
          } finally {
            prompt.close();
          }
        }
        const whoAmI = (t: string) =>
          new PlatformClient(platform, t).request<Me>('GET', '/api/v1/me', {
            valid: (v) => isObject(v) && typeof v.name === 'string' && typeof v.role === 'string',
          });
        let me = await refusedAs(
          401,
          `the platform refused this token (expired, revoked or unknown); nothing was saved. ` +
            `Create a new one for the machine identity (web UI: Identities, or ` +
            `POST /api/v1/identities/:id/tokens), or log in with email and password: gatepool login --platform ${platform}`,
          whoAmI(token),
        );
        const orgs = me.organizations ?? (me.organization ? [me.organization] : []);
        if (opts.org !== undefined) {
          const wanted = opts.org.trim();
          const match = orgs.find(
            (o) => o.id === wanted || o.name.toLowerCase() === wanted.toLowerCase(),
          );
          if (!match)
            throw new ClientError(
              `you are not a member of an organization "${wanted}" on ${platform} ` +
                `(yours: ${orgs.map((o) => o.name).join(', ') || 'none'}); nothing was saved`,
            );
          if (match.id !== me.organization?.id) {
            if (opts.token)
              throw new ClientError(
                `this token belongs to organization "${me.organization?.name ?? '?'}": a machine identity's token works in its own organization only; nothing was saved`,
              );
            // A session of its own in that organization (the first one ends).
            const switched = await new PlatformClient(platform, token).request<SignedIn>(
              'POST',
              '/api/v1/auth/switch-organization',
              {
                body: { organizationId: match.id },
                valid: (v) => isObject(v) && typeof v.token === 'string' && v.token !== '',
              },
            );
            token = switched.token;
            expiresAt = expiryOf(switched);
            me = await whoAmI(token);
          }
        }
        // Saved only now: the platform accepted the credential and answered as a platform.
        const path = saveCredentials({ platform, token, expiresAt });
        const others = orgs.filter((o) => o.id !== me.organization?.id).map((o) => o.name);
        process.stdout.write(
          `Logged in to ${platform} as ${me.name} (${me.organization?.name ?? 'organization'}, role ${me.role}); saved to ${path}\n` +
            (others.length && opts.org === undefined
              ? `You are also a member of ${others.join(', ')}: choose with --org NAME.\n`
              : ''),
        );
        return 0;
      }),
    );
}
