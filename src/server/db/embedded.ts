import { join } from 'node:path';
import { openDatabase, type Database } from './client.js';
import { lockDataDir } from './datadir-lock.js';

/** Where PGlite keeps its files inside GATEPOOL_DATA_DIR. */
export const pgliteDir = (dataDir: string) => join(dataDir, 'pglite');

/**
 * Opens the embedded database of a data directory, holding the directory's lock for as long
 * as it is open; throws DataDirInUseError (touching nothing) when another process holds it.
 */
export async function openEmbeddedDatabase(dataDir: string): Promise<Database> {
  const lock = await lockDataDir(dataDir);
  let database: Database;
  try {
    database = await openDatabase({ dataDir: pgliteDir(dataDir) });
  } catch (err) {
    await lock.release();
    throw err;
  }
  return {
    ...database,
    lock,
    async close() {
      try {
        await database.close();
      } finally {
        await lock.release();
      }
    },
  };
}
