import type { Command } from 'commander';
import { isObject, PlatformClient } from '../client/api.js';
import { forgetCredentials, loadCredentials, savedLogin } from '../client/config.js';
import { PlatformRefusal } from '../client/errors.js';
import { runClientCommand } from './client-command.js';

interface Me {
  type: 'user' | 'identity';
  name: string;
  role: string;
  roleName?: string;
  organization?: { id: string; name: string };
  passwordChangeRequired?: boolean;
}

/** "2026-12-01T11:00:00.000Z (in 11 h)", or "(expired)" once past. */
function expiry(iso: string, now = Date.now()): string {
  const ms = Date.parse(iso) - now;
  if (ms <= 0) return `${iso} (expired)`;
  const minutes = Math.round(ms / 60_000);
  const left =
    minutes < 120
      ? `${minutes} min`
      : minutes < 48 * 60
        ? `${Math.round(minutes / 60)} h`
        : `${Math.round(minutes / 1440)} days`;
  return `${iso} (in ${left})`;
}

/** What logout tells the user when the platform could not revoke the token. */
function stillValid(expiresAt: string | undefined): string {
  return expiresAt
    ? `it stays valid on the platform until it expires, ${expiry(expiresAt)}`
    : 'it stays valid on the platform until it expires';
}

/**
 * `gatepool logout` and `gatepool whoami`: the saved login's end, and what it is. Logout
 * forgets the saved token whatever the platform answers, so a platform that is down never
 * keeps a credential on this machine; it says whether the platform revoked it.
 */
export function registerSessionCommands(program: Command): void {
  program
    .command('logout')
    .description(
      'Revoke the saved login on its platform and remove it from this machine (also when the platform is unreachable)',
    )
    .action(() =>
      runClientCommand('logout', async () => {
        const saved = savedLogin();
        const envNote = process.env.GATEPOOL_TOKEN
          ? 'GATEPOOL_TOKEN is still set: commands keep using it until you unset it.\n'
          : '';
        if (!saved) {
          process.stdout.write(`Not logged in: nothing saved in the gatepool config.\n${envNote}`);
          return 0;
        }
        const { path, platform, token, expiresAt } = saved;
        let revoked: string;
        if (!platform || !token) {
          revoked = `${path} held no usable login; nothing was sent to a platform`;
        } else {
          try {
            await new PlatformClient(platform, token, { timeoutMs: 10_000 }).request(
              'POST',
              '/api/v1/auth/logout',
              { noContent: true },
            );
            revoked = `the platform revoked the token`;
          } catch (err) {
            if (err instanceof PlatformRefusal && err.status === 401)
              revoked = `the platform no longer accepted the token (expired or already revoked)`;
            else if (err instanceof PlatformRefusal)
              revoked = `the platform could not revoke the token (${err.message}): ${stillValid(expiresAt)}`;
            else
              revoked = `${(err as Error).message}, so the token was not revoked: ${stillValid(expiresAt)}`;
          }
        }
        forgetCredentials();
        process.stdout.write(
          `Logged out${platform ? ` of ${platform}` : ''}: ${revoked}; removed ${path}.\n${envNote}`,
        );
        return 0;
      }),
    );

  program
    .command('whoami')
    .description('Show the platform, who you are logged in as, organization, role and token expiry')
    .action(() =>
      runClientCommand('whoami', async () => {
        const creds = loadCredentials();
        const me = await new PlatformClient(creds.platform, creds.token, {
          tokenFrom: creds.tokenFrom,
        }).request<Me>('GET', '/api/v1/me', {
          valid: (v) =>
            isObject(v) &&
            typeof v.name === 'string' &&
            typeof v.role === 'string' &&
            (v.type === 'user' || v.type === 'identity'),
        });
        const who = me.type === 'identity' ? `${me.name} (machine identity)` : me.name;
        const org = me.organization ? `${me.organization.name} (${me.organization.id})` : 'unknown';
        const role =
          me.roleName && me.roleName.toLowerCase() !== me.role
            ? `${me.role} (${me.roleName})`
            : me.role;
        const token =
          creds.tokenFrom === 'GATEPOOL_TOKEN'
            ? 'from GATEPOOL_TOKEN; expiry not known here'
            : creds.expiresAt
              ? `saved; expires ${expiry(creds.expiresAt)}`
              : 'saved; expiry not known here (an access token: see its identity in the web UI)';
        process.stdout.write(
          `Platform      ${creds.platform}\n` +
            `Logged in as  ${who}\n` +
            `Organization  ${org}\n` +
            `Role          ${role}\n` +
            `Token         ${token}\n` +
            (me.passwordChangeRequired
              ? 'Password      must be changed first: it was set by the admin who invited you, and ' +
                'nothing else works until you choose your own (web UI, or `gatepool login` on a terminal)\n'
              : ''),
        );
        return 0;
      }),
    );
}
