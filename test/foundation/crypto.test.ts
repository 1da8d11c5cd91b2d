/** Secrets at rest: the AES-256-GCM envelope and the root key file. */
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadRootKey, parseKey, SecretBox } from '../../src/server/crypto/envelope.js';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'gatepool-crypto-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('SecretBox', () => {
  const box = new SecretBox(randomBytes(32));

  it('round-trips, with a fresh IV each time', () => {
    for (const plain of ['', 'hunter2', 'ünïcødé 🔐', 'x'.repeat(100_000)]) {
      const sealed = box.encrypt(plain);
      expect(sealed).toMatch(/^v1:/);
      expect(sealed).not.toContain(plain || 'never');
      expect(box.decrypt(sealed)).toBe(plain);
    }
    expect(box.encrypt('same')).not.toBe(box.encrypt('same'));
  });

  it('refuses tampered ciphertext, tag or IV, another key, and unknown versions', () => {
    const sealed = box.encrypt('the CA private key');
    const raw = Buffer.from(sealed.slice(3), 'base64');
    for (const index of [0, 12, 28, raw.length - 1]) {
      const bad = Buffer.from(raw);
      bad[index] = bad[index]! ^ 0x01;
      expect(() => box.decrypt(`v1:${bad.toString('base64')}`), `byte ${index}`).toThrow();
    }
    expect(() => box.decrypt(`v1:${raw.subarray(0, 20).toString('base64')}`)).toThrow();
    expect(() => new SecretBox(randomBytes(32)).decrypt(sealed)).toThrow();
    expect(() => box.decrypt(`v2:${raw.toString('base64')}`)).toThrow(/version/);
  });

  it('needs a 32-byte key', () => {
    expect(() => new SecretBox(randomBytes(16))).toThrow(/32 bytes/);
  });
});

describe('root key', () => {
  it('is generated once into the data dir with mode 0600, then reused', () => {
    const dir = join(tempDir(), 'nested', 'data');
    const first = loadRootKey({ dataDir: dir });
    const file = join(dir, 'root.key');
    expect(first.source).toBe(file);
    expect(first.key).toHaveLength(32);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const content = readFileSync(file, 'utf8');
    const second = loadRootKey({ dataDir: dir });
    expect(second.key.equals(first.key)).toBe(true);
    expect(readFileSync(file, 'utf8')).toBe(content);
    // Secrets sealed under the first load open under the second.
    expect(new SecretBox(second.key).decrypt(new SecretBox(first.key).encrypt('s'))).toBe('s');
  });

  it('tightens loose permissions on an existing key file', () => {
    const dir = tempDir();
    const file = join(dir, 'root.key');
    const hex = randomBytes(32).toString('hex');
    writeFileSync(file, `${hex}\n`, { mode: 0o644 });
    chmodSync(file, 0o644);
    expect(loadRootKey({ dataDir: dir }).key.toString('hex')).toBe(hex);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('uses GATEPOOL_ENCRYPTION_KEY (hex or base64) without writing a file', () => {
    const dir = tempDir();
    const key = randomBytes(32);
    expect(loadRootKey({ key: key.toString('hex'), dataDir: dir }).key.equals(key)).toBe(true);
    expect(loadRootKey({ key: key.toString('base64'), dataDir: dir }).key.equals(key)).toBe(true);
    expect(existsSync(join(dir, 'root.key'))).toBe(false);
    expect(parseKey(` ${key.toString('hex')}\n`).equals(key)).toBe(true);
  });
});
