/**
 * The root key is never generated silently (QA3 F15): a start that writes a new root.key says
 * where (absolute path) and that it must be kept, in the banner and the log. On PostgreSQL the
 * key and the database live apart, so every start names the key file; a start from a data
 * directory without the key refuses once the database holds secrets.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTestDatabase, PG_ENV } from '../helpers/postgres.js';
import { gatepool, startServer } from './processes.js';

const pgUrl = process.env[PG_ENV];
const NOTICE = (file: string) =>
  `generated a new root key at ${file} — back it up, or set GATEPOOL_ENCRYPTION_KEY; ` +
  `without it the database's secrets cannot be read`;

describe('a generated root key is announced', () => {
  let dir: string;
  beforeAll(async () => void (dir = await mkdtemp(join(tmpdir(), 'gatepool-rootkey-'))));
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('on the embedded database: the first start names the new key, the next does not', async () => {
    const dataDir = join(dir, 'embedded');
    const first = await startServer({ GATEPOOL_DATA_DIR: dataDir });
    await first.kill();
    const file = join(dataDir, 'root.key');
    expect(first.output()).toContain(`Root key  ${NOTICE(file)}`);
    // The log says it too (JSON at warn), not only the banner.
    expect(first.output()).toMatch(/"level":40.*generated a new root key at/);
    const again = await startServer({ GATEPOOL_DATA_DIR: dataDir });
    await again.kill();
    expect(again.output()).not.toContain('generated a new root key');
  }, 180_000);

  describe.skipIf(!pgUrl)('on PostgreSQL', () => {
    let db: { url: string; drop: () => Promise<void> };
    beforeAll(async () => {
      db = await createTestDatabase(pgUrl!, inject('pgRunId') ?? 'rootkey', null);
    });
    afterAll(() => db?.drop());

    it('names the key file on every start, and refuses a start without it once secrets exist', async () => {
      const dataDir = join(dir, 'pg-a');
      const file = join(dataDir, 'root.key');
      const first = await startServer({ DATABASE_URL: db.url, GATEPOOL_DATA_DIR: dataDir });
      await first.kill();
      expect(first.output()).toContain(`Root key  ${NOTICE(file)}`);
      expect(existsSync(file)).toBe(true);

      const second = await startServer({ DATABASE_URL: db.url, GATEPOOL_DATA_DIR: dataDir });
      await second.kill();
      expect(second.output()).not.toContain('generated a new root key');
      expect(second.output()).toContain(
        `Root key  ${file} (keep it with the database's backups, or set GATEPOOL_ENCRYPTION_KEY)`,
      );

      // Another working directory (a pod whose ./data did not survive): refused, no new key.
      const elsewhere = join(dir, 'pg-b');
      const refused = await gatepool(['server'], {
        DATABASE_URL: db.url,
        GATEPOOL_DATA_DIR: elsewhere,
        GATEPOOL_HOST: '127.0.0.1',
        GATEPOOL_PORT: '0',
        GATEPOOL_TUNNEL_PORT: '0',
      });
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain(
        `${join(elsewhere, 'root.key')} is missing, but the database already holds secrets`,
      );
      expect(existsSync(join(elsewhere, 'root.key'))).toBe(false);
    }, 180_000);
  });
});
