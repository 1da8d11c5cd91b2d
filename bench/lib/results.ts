import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ROOT } from '../../test/tunnel/harness.js';

/** Writes `bench/results/NAME.json` (pretty, newline-terminated) and says so. */
export async function writeResults(name: string, results: unknown): Promise<void> {
  const dir = join(ROOT, 'bench/results');
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, `${name}.json`), `${JSON.stringify(results, null, 2)}\n`);
  process.stdout.write(`wrote bench/results/${name}.json\n`);
}
