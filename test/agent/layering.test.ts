/**
 * Import layering (DESIGN §9), checked on the source text: the agent ships without the platform
 * and must start light, and the tunnel sits below gateways and pools. A static scan fails on the
 * import itself, before anything runs.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../tunnel/harness.js';

interface Import {
  specifier: string;
  dynamic: boolean;
}

// `import x from '…'`, `import type …`, `export … from '…'`, `import '…'` and `import('…')`.
const STATIC_IMPORT = /^\s*(?:import|export)\s(?:[^'";]*?\sfrom\s*)?['"]([^'"]+)['"]/gm;
const DYNAMIC_IMPORT = /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g;

function importsOf(file: string): Import[] {
  const text = readFileSync(file, 'utf8');
  const found: Import[] = [];
  for (const match of text.matchAll(STATIC_IMPORT)) {
    if (match[1]) found.push({ specifier: match[1], dynamic: false });
  }
  for (const match of text.matchAll(DYNAMIC_IMPORT)) {
    if (match[1]) found.push({ specifier: match[1], dynamic: true });
  }
  return found;
}

/** A relative specifier as the .ts file it names; null for packages and node: builtins. */
function resolveLocal(from: string, specifier: string): string | null {
  if (!specifier.startsWith('.')) return null;
  const target = resolve(dirname(from), specifier);
  const ts = target.replace(/\.js$/, '.ts');
  if (existsSync(ts)) return ts;
  if (existsSync(`${target}.ts`)) return `${target}.ts`;
  return join(target, 'index.ts');
}

function filesUnder(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, encoding: 'utf8' })
    .filter((name) => name.endsWith('.ts'))
    .map((name) => join(ROOT, dir, name));
}

const rel = (file: string): string => relative(ROOT, file);

/** Every local file and package reached from `entry`, with the path that reached it. */
function closure(entry: string, followDynamic: boolean): Map<string, string[]> {
  const reached = new Map<string, string[]>([[entry, [rel(entry)]]]);
  const queue = [entry];
  for (let file = queue.shift(); file; file = queue.shift()) {
    const path = reached.get(file) ?? [];
    for (const { specifier, dynamic } of importsOf(file)) {
      if (dynamic && !followDynamic) continue;
      const local = resolveLocal(file, specifier);
      const key = local ?? `package:${specifier}`;
      if (reached.has(key)) continue;
      reached.set(key, [...path, local ? rel(local) : specifier]);
      if (local) queue.push(local);
    }
  }
  return reached;
}

describe('import layering', () => {
  it('the scanner sees static, type-only, side-effect and dynamic imports', () => {
    const run = importsOf(join(ROOT, 'src/gateway/run.ts')).map((entry) => entry.specifier);
    expect(run).toEqual(expect.arrayContaining(['./agent.js', 'node:path']));
    const pki = importsOf(join(ROOT, 'src/server/gateways/pki.ts'));
    expect(pki).toContainEqual({ specifier: '../../protocol/reflect-shim.js', dynamic: false });
    const enroll = importsOf(join(ROOT, 'src/gateway/enroll.ts'));
    expect(enroll).toContainEqual({ specifier: '../protocol/csr.js', dynamic: true });
    expect(enroll).toContainEqual({ specifier: './state.js', dynamic: false });
  });

  it('nothing under src/gateway or src/protocol imports from src/server', () => {
    const offenders: string[] = [];
    for (const file of [...filesUnder('src/gateway'), ...filesUnder('src/protocol')]) {
      for (const { specifier } of importsOf(file)) {
        const local = resolveLocal(file, specifier);
        if (local && rel(local).startsWith('src/server/')) {
          offenders.push(`${rel(file)} → ${specifier}`);
        }
      }
    }
    expect(offenders).toEqual([]);
  });

  it('the agent entry reaches no platform module, even through src/cli', () => {
    const reached = closure(join(ROOT, 'src/gateway/main.ts'), true);
    expect(reached.has(join(ROOT, 'src/gateway/agent.ts'))).toBe(true);
    const platform = [...reached.entries()]
      .filter(([key]) => !key.startsWith('package:') && rel(key).startsWith('src/server/'))
      .map(([, path]) => path.join(' → '));
    expect(platform).toEqual([]);
  });

  it('an enrolled agent starts without the X.509 builder or the YAML parser', () => {
    // Static imports only: what loads at start-up. Enrollment and YAML files load them on demand.
    const reached = closure(join(ROOT, 'src/gateway/main.ts'), false);
    const heavy = ['@peculiar/x509', 'yaml', 'fastify', 'pg', 'drizzle-orm']
      .filter((name) => reached.has(`package:${name}`))
      .map((name) => (reached.get(`package:${name}`) ?? []).join(' → '));
    expect(heavy).toEqual([]);
    expect(reached.has(`package:commander`)).toBe(true);
  });

  it('src/server/tunnel imports only itself and src/protocol (not gateways, pools or above)', () => {
    const offenders: string[] = [];
    for (const file of filesUnder('src/server/tunnel')) {
      for (const { specifier } of importsOf(file)) {
        const local = resolveLocal(file, specifier);
        if (!local) continue;
        const target = rel(local);
        if (!target.startsWith('src/server/tunnel/') && !target.startsWith('src/protocol/')) {
          offenders.push(`${rel(file)} → ${specifier}`);
        }
      }
    }
    expect(offenders).toEqual([]);
  });
});
