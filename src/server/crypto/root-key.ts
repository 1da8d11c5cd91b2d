import { existsSync, readFileSync } from 'node:fs';
import type { Database } from '../db/client.js';
import { parseKey, rootKeyFile } from './envelope.js';
import { holdsSealedSecrets } from './queries.js';

/**
 * The rule loadRootKey's caller checks first, before the platform starts: a wrong key file
 * must be named (the file, not just "the key"), and a missing one must not be replaced by a
 * new key when the database already holds secrets sealed with the old: the platform would
 * refuse to start anyway, and leave behind a key that fits nothing. Returns the problem in one
 * line, or undefined. A root.key that cannot be read throws its own error, with the file named
 * in front (its code and path kept, so a caller can say who owns it).
 */
export async function rootKeyProblem(
  database: Database,
  opts: { key?: string; dataDir: string },
): Promise<string | undefined> {
  if (opts.key) return undefined; // validated with the configuration
  const file = rootKeyFile(opts.dataDir);
  if (existsSync(file)) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      if (err instanceof Error) err.message = `cannot read the root key ${file}: ${err.message}`;
      throw err;
    }
    const length = parseKey(text).length;
    return length === 32
      ? undefined
      : `${file} is not a valid root key (it decodes to ${length} bytes, 32 are needed: 64 hex ` +
          `digits): put back the root.key this data was stored with, or start with the ` +
          `GATEPOOL_ENCRYPTION_KEY it was stored with`;
  }
  return (await holdsSealedSecrets(database))
    ? `${file} is missing, but the database already holds secrets sealed with a root key ` +
        `(a different root key cannot read them): put back the root.key of this data (a backup ` +
        `of it holds one unless GATEPOOL_ENCRYPTION_KEY was used), or start with the ` +
        `GATEPOOL_ENCRYPTION_KEY it was stored with`
    : undefined;
}
