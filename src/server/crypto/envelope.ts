import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/**
 * AES-256-GCM envelope for secrets at rest (CA keys, reviewer JWTs, passwords).
 * Format: `v1:` + base64(iv[12] | tag[16] | ciphertext). The version prefix lets a later key
 * rotation tell old ciphertexts apart.
 */
export class SecretBox {
  constructor(private readonly key: Buffer) {
    if (key.length !== 32) throw new Error('encryption key must be 32 bytes');
  }

  encrypt(plaintext: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return `v1:${Buffer.concat([iv, cipher.getAuthTag(), ct]).toString('base64')}`;
  }

  decrypt(envelope: string): string {
    if (!envelope.startsWith('v1:')) throw new Error('unknown secret envelope version');
    const raw = Buffer.from(envelope.slice(3), 'base64');
    const decipher = createDecipheriv('aes-256-gcm', this.key, raw.subarray(0, 12));
    decipher.setAuthTag(raw.subarray(12, 28));
    return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
  }
}

export function parseKey(text: string): Buffer {
  const t = text.trim();
  return /^[0-9a-fA-F]{64}$/.test(t) ? Buffer.from(t, 'hex') : Buffer.from(t, 'base64');
}

/** Where the root key lives when GATEPOOL_ENCRYPTION_KEY is not set. */
export const rootKeyFile = (dataDir: string): string => join(dataDir, 'root.key');

/**
 * The root key: GATEPOOL_ENCRYPTION_KEY when given, otherwise `root.key` in the data dir,
 * generated on first start with mode 0600. Losing that file loses every secret, so it is
 * never regenerated over an existing one. Before the platform starts, rootKeyProblem
 * (root-key.ts) refuses a key file that is not a key, or a missing one the database needs.
 */
export function loadRootKey(opts: { key?: string; dataDir: string }): {
  key: Buffer;
  source: string;
  /** The absolute path of the key file when this call created it (it must be backed up). */
  generated?: string;
} {
  if (opts.key) return { key: parseKey(opts.key), source: 'GATEPOOL_ENCRYPTION_KEY' };
  const file = resolve(rootKeyFile(opts.dataDir));
  let generated: string | undefined;
  if (!existsSync(file)) {
    mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
    writeFileSync(file, randomBytes(32).toString('hex') + '\n', { mode: 0o600, flag: 'wx' });
    generated = file;
  }
  chmodSync(file, 0o600);
  return { key: parseKey(readFileSync(file, 'utf8')), source: file, generated };
}

/** What to tell the operator about a root key just generated, naming where it is. */
export const generatedRootKeyNotice = (file: string): string =>
  `generated a new root key at ${file} — back it up, or set GATEPOOL_ENCRYPTION_KEY; ` +
  `without it the database's secrets cannot be read`;
