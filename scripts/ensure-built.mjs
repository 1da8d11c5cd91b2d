// `npm start` on a fresh checkout: build once when dist/ is missing or older than src/.
import { execSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function newest(dir) {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}
const stamp = 'dist/cli/index.js';
const webStamp = 'dist/web/index.html';
const stale = (file, ...dirs) =>
  !existsSync(file) || dirs.some((d) => statSync(file).mtimeMs < newest(d));
if (stale(stamp, 'src') || stale(webStamp, 'web/src')) {
  console.error('gatepool: building (npm run build)…');
  execSync('npm run build --silent', { stdio: 'inherit' });
}
