/**
 * Where `gatepool login` keeps the platform URL and token: `$XDG_CONFIG_HOME/gatepool/config.json`
 * (default `~/.config/gatepool/config.json`), mode 0600 in a 0700 directory, since the token
 * is a credential. GATEPOOL_PLATFORM / GATEPOOL_TOKEN override what is saved; a saved token
 * only ever goes to the platform it was saved for.
 */
import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { ClientError } from './errors.js';

export interface Credentials {
  platform: string;
  token: string;
  /** When the token expires, if the platform said so at login (ISO 8601). */
  expiresAt?: string;
}

/** Credentials to use, and where the token came from (what to tell the user when it is refused). */
export interface LoadedCredentials extends Credentials {
  tokenFrom: 'GATEPOOL_TOKEN' | 'saved';
}

type Env = Record<string, string | undefined>;

export function configPath(env: Env = process.env): string {
  const base = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config');
  return join(base, 'gatepool', 'config.json');
}

function readSaved(path: string): Partial<Credentials> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new ClientError(`cannot read ${path}: ${(err as Error).message}`);
  }
  try {
    const parsed = JSON.parse(text) as Partial<Record<keyof Credentials, unknown>>;
    return {
      ...(typeof parsed.platform === 'string' ? { platform: parsed.platform } : {}),
      ...(typeof parsed.token === 'string' ? { token: parsed.token } : {}),
      ...(typeof parsed.expiresAt === 'string' ? { expiresAt: parsed.expiresAt } : {}),
    };
  } catch {
    throw new ClientError(`${path} is not valid JSON: run \`gatepool login\` again`);
  }
}

/** A platform URL as given by a user: http(s) only, no trailing slash. */
export function normalizePlatformUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ClientError(
      `platform URL "${raw}" is not a URL: give e.g. https://gatepool.example.com`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new ClientError(`platform URL "${raw}" must start with http:// or https://`);
  return url.toString().replace(/\/+$/, '');
}

/**
 * The credentials to use: GATEPOOL_TOKEN (with GATEPOOL_PLATFORM, or else the saved platform),
 * or the saved login. A saved token is sent only to the platform it was saved for: a
 * GATEPOOL_PLATFORM naming another one must not receive it.
 */
export function loadCredentials(env: Env = process.env): LoadedCredentials {
  const envPlatform = env.GATEPOOL_PLATFORM
    ? normalizePlatformUrl(env.GATEPOOL_PLATFORM)
    : undefined;
  // Both given: the saved file plays no part, so a broken one is no reason to fail.
  if (env.GATEPOOL_TOKEN && envPlatform)
    return { platform: envPlatform, token: env.GATEPOOL_TOKEN, tokenFrom: 'GATEPOOL_TOKEN' };
  const path = configPath(env);
  const saved = readSaved(path);
  const savedPlatform = saved.platform ? savedUrl(saved.platform, path) : undefined;
  if (env.GATEPOOL_TOKEN) {
    if (!savedPlatform)
      throw new ClientError(
        'GATEPOOL_TOKEN is set but no platform is known: set GATEPOOL_PLATFORM too, e.g. https://gatepool.example.com',
      );
    return { platform: savedPlatform, token: env.GATEPOOL_TOKEN, tokenFrom: 'GATEPOOL_TOKEN' };
  }
  if (!savedPlatform || !saved.token)
    throw new ClientError(
      envPlatform
        ? `not logged in to ${envPlatform}: run \`gatepool login --platform ${envPlatform}\`, or set GATEPOOL_TOKEN`
        : 'not logged in: run `gatepool login --platform URL` (or set GATEPOOL_PLATFORM and GATEPOOL_TOKEN)',
    );
  if (envPlatform && envPlatform !== savedPlatform)
    throw new ClientError(
      `not logged in to ${envPlatform} (the saved login is for ${savedPlatform}): run \`gatepool login --platform ${envPlatform}\`, or set GATEPOOL_TOKEN`,
    );
  return {
    platform: savedPlatform,
    token: saved.token,
    tokenFrom: 'saved',
    ...(saved.expiresAt ? { expiresAt: saved.expiresAt } : {}),
  };
}

/**
 * The saved login as it is, for `gatepool logout`: the platform (normalized when valid) and
 * token, or none. A file that cannot be parsed counts as a login to forget, not an error.
 */
export function savedLogin(
  env: Env = process.env,
): { path: string; platform?: string; token?: string; expiresAt?: string } | undefined {
  const path = configPath(env);
  let saved: Partial<Credentials>;
  try {
    saved = readSaved(path);
  } catch {
    return { path };
  }
  if (!saved.platform && !saved.token) return undefined;
  let platform: string | undefined;
  try {
    platform = saved.platform ? normalizePlatformUrl(saved.platform) : undefined;
  } catch {
    platform = undefined;
  }
  return { path, platform, token: saved.token, expiresAt: saved.expiresAt };
}

/** Removes the saved login; true when there was a file to remove. */
export function forgetCredentials(env: Env = process.env): boolean {
  const path = configPath(env);
  try {
    rmSync(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw new ClientError(`cannot remove ${path}: ${(err as Error).message}`);
  }
}

/** The saved platform URL, normalized like a given one so the two compare. */
function savedUrl(raw: string, path: string): string {
  try {
    return normalizePlatformUrl(raw);
  } catch {
    throw new ClientError(
      `${path} holds an invalid platform URL "${raw}": run \`gatepool login --platform URL\` again`,
    );
  }
}

export function saveCredentials(creds: Credentials, env: Env = process.env): string {
  const path = configPath(env);
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  // Written aside and renamed, so a crash never leaves a half-written credential file.
  // Only these fields: a caller's extra fields (e.g. tokenFrom) are not configuration.
  const saved: Credentials = {
    platform: creds.platform,
    token: creds.token,
    ...(creds.expiresAt ? { expiresAt: creds.expiresAt } : {}),
  };
  writeFileSync(tmp, JSON.stringify(saved, null, 2) + '\n', { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
  return path;
}
