/**
 * How tests run real `gatepool` processes (server, CLI, gateway agent) from source.
 *
 * Under `node --import tsx`, Node 20 runs every module resolution and load through tsx's hooks
 * on a separate thread: about a second per process before any gatepool code runs, paid by
 * every server start and CLI command a test spawns (hundreds per suite). The global setup
 * bundles the two entry points with esbuild once per `vitest run` instead (about half a
 * second), into a directory of that run under node_modules/.cache so the bundle's bare imports
 * resolve to the project's packages. Runtime dependencies stay external, so a test process runs
 * the same packages the product does; `import.meta.url` keeps each source file's own URL, so
 * paths found relative to a module (migrations, the web build) are the ones tsx would see.
 *
 * Outside vitest (bench scripts), `nodeEntry` falls back to tsx.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { pidExists } from '../../src/server/db/datadir-lock.js';

const ROOT = resolve(fileURLToPath(import.meta.url), '../../..');
const SOURCES = {
  cli: join(ROOT, 'test/helpers/cli-entry.ts'),
  agent: join(ROOT, 'src/gateway/main.ts'),
} as const;
export type Entry = keyof typeof SOURCES;

/** Set by the global setup for the test processes it starts (vitest's workers inherit it). */
export const BUNDLE_ENV = 'GATEPOOL_TEST_BUNDLE_DIR';

/**
 * Node arguments that run an entry point: the run's bundle under vitest, tsx otherwise. Node
 * flags the caller needs go before these.
 */
export function nodeEntry(entry: Entry): string[] {
  const dir = process.env[BUNDLE_ENV];
  return dir ? [join(dir, `${entry}.js`)] : ['--import', 'tsx', SOURCES[entry]];
}

/** Bundles both entry points into a fresh directory; returns it and a function that removes it. */
export async function buildEntries(): Promise<{ dir: string; remove: () => void }> {
  const { build } = await import('esbuild');
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
    dependencies: Record<string, string>;
  };
  const parent = join(ROOT, 'node_modules/.cache/gatepool-test');
  removeOrphans(parent);
  const dir = join(parent, `${process.pid}-${Date.now()}`);
  mkdirSync(dir, { recursive: true });
  await build({
    entryPoints: SOURCES,
    outdir: dir,
    bundle: true,
    splitting: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    sourcemap: 'inline',
    logLevel: 'warning',
    // @peculiar/x509 is bundled in: its CommonJS then loads where it is imported, after
    // protocol/reflect-shim.ts, as in the product; external, ESM would hoist it above the shim.
    external: Object.keys(pkg.dependencies).filter((name) => name !== '@peculiar/x509'),
    plugins: [
      {
        name: 'source-import-meta-url',
        setup(b) {
          b.onLoad({ filter: /\/src\/.*\.ts$/ }, async (args) => ({
            contents: (await readFile(args.path, 'utf8')).replaceAll(
              'import.meta.url',
              JSON.stringify(pathToFileURL(args.path).href),
            ),
            loader: 'ts',
          }));
        },
      },
    ],
  });
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Bundles of runs whose process is gone (killed before its teardown): one per run, not forever. */
function removeOrphans(parent: string): void {
  let names: string[];
  try {
    names = readdirSync(parent);
  } catch {
    return;
  }
  for (const name of names) {
    const pid = Number(name.split('-')[0]);
    if (!Number.isInteger(pid) || pid <= 0 || pidExists(pid)) continue;
    rmSync(join(parent, name), { recursive: true, force: true });
  }
}
