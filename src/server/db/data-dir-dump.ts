import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { TarEntry } from './tar.js';

/** Files read at once: enough to keep the disk busy, few enough to leave the pool to others. */
const PARALLEL_READS = 8;

/**
 * Every directory and file under dir, read asynchronously, as the tar entries PGlite's own
 * dump makes of its data directory (names from dir's root with a leading slash, directories
 * as entries of their own, so empty ones such as pg_tblspc come back on load). The caller
 * makes sure nothing writes to dir meanwhile.
 */
export async function readDataDir(dir: string): Promise<TarEntry[]> {
  const entries: TarEntry[] = [];
  const files: { name: string; path: string; mtime: number }[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const entry of await readdir(join(dir, rel), { withFileTypes: true })) {
      const name = `${rel}/${entry.name}`;
      const st = await stat(join(dir, name));
      const mtime = st.mtimeMs / 1000;
      if (st.isDirectory()) {
        entries.push({ name, directory: true, mtime });
        await walk(name);
      } else if (st.isFile()) {
        files.push({ name, path: join(dir, name), mtime });
      }
    }
  };
  await walk('');
  let next = 0;
  const read = async (): Promise<void> => {
    while (next < files.length) {
      const f = files[next++]!;
      entries.push({ name: f.name, data: await readFile(f.path), mtime: f.mtime });
    }
  };
  await Promise.all(Array.from({ length: PARALLEL_READS }, read));
  return entries;
}
