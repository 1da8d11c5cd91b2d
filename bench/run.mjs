// `npm run bench`: builds, then runs every bench/*.ts (helpers live in bench/lib/) one after
// another, each in its own process through tsx. Gateway agents run from the build as users run
// them (bin/gatepool.js, GATEPOOL_AGENT_FROM_BUILD=1), so the figures are those of the shipped
// agent: a start-up or memory regression in what `gatepool gateway start` loads shows here.
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

console.log('=== npm run build (benchmarks run the shipped agent)');
const build = spawnSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' });
if (build.status !== 0) {
  console.error('build failed: fix it or run a single bench with `npx tsx bench/NAME.ts`');
  process.exit(1);
}

let failed = 0;
for (const name of benches) {
  console.log(`\n=== bench/${name}`);
  const result = spawnSync(process.execPath, ['--import', 'tsx', join('bench', name)], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, GATEPOOL_AGENT_FROM_BUILD: '1' },
  });
  if (result.status !== 0) {
    failed += 1;
    console.error(`bench/${name} failed (${result.signal ?? `exit ${result.status}`})`);
  }
}
process.exit(failed ? 1 : 0);
