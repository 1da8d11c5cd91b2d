/**
 * Where `gatepool login` keeps the platform URL and token: `$XDG_CONFIG_HOME/gatepool/config.json`
 * (default `~/.config/gatepool/config.json`), mode 0600 in a 0700 directory, since the token
 * is a credential. GATEPOOL_PLATFORM / GATEPOOL_TOKEN override what is saved.
 */
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { ClientError } from './errors.js';

export interface Credentials {
  platform: string;
  token: string;
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

/** The credentials to use: environment first, then the saved file; a clear error when neither. */
export function loadCredentials(env: Env = process.env): Credentials {
  const saved = readSaved(configPath(env));
  const platform = env.GATEPOOL_PLATFORM || saved.platform;
  const token = env.GATEPOOL_TOKEN || saved.token;
  if (!platform || !token)
    throw new ClientError(
      'not logged in: run `gatepool login --platform URL` (or set GATEPOOL_PLATFORM and GATEPOOL_TOKEN)',
    );
  return { platform: normalizePlatformUrl(platform), token };
}

export function saveCredentials(creds: Credentials, env: Env = process.env): string {
  const path = configPath(env);
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  // Written aside and renamed, so a crash never leaves a half-written credential file.
  writeFileSync(tmp, JSON.stringify(creds, null, 2) + '\n', { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
  return path;
}
