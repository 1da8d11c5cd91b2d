// `npm run bench`: runs every bench/*.ts (helpers live in bench/lib/) one after another, each in
// its own process through tsx so a bench never depends on a fresh dist/ build.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const only = process.argv.slice(2);
const benches = readdirSync(join(root, 'bench'))
  .filter((name) => name.endsWith('.ts') && !name.endsWith('.d.ts'))
  .filter((name) => only.length === 0 || only.includes(name.replace(/\.ts$/, '')))
  .sort();

let failed = 0;
for (const name of benches) {
  console.log(`\n=== bench/${name}`);
  const result = spawnSync(process.execPath, ['--import', 'tsx', join('bench', name)], {
    cwd: root,
    stdio: 'inherit',
  });
  if (result.status !== 0) {
    failed += 1;
    console.error(`bench/${name} failed (${result.signal ?? `exit ${result.status}`})`);
  }
}
process.exit(failed ? 1 : 0);
