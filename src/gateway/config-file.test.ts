import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigFileError, loadConfigFile } from './config-file.js';

describe('agent --config file', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gatepool-config-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  async function load(name: string, text: string) {
    const path = join(dir, name);
    await writeFile(path, text);
    return loadConfigFile(path);
  }

  it('reads kebab-case and camelCase keys, singular and plural list names', async () => {
    expect(
      await load(
        'a.yaml',
        'state-dir: state\nallow: "*"\npools: [a, b]\nlabels: { zone: a, n: 2, on: true }\n' +
          'drain-timeout: 5\ninsecure-platform-tls: true\n',
      ),
    ).toEqual({
      stateDir: join(dir, 'state'),
      allow: ['*'],
      pool: ['a', 'b'],
      label: ['zone=a', 'n=2', 'on=true'],
      drainTimeout: '5',
      insecurePlatformTls: true,
    });
    expect(await load('b.json', '{"stateDir": "/abs", "label": ["k=v"], "pool": "p"}')).toEqual({
      stateDir: '/abs',
      label: ['k=v'],
      pool: ['p'],
    });
    expect(await load('empty.yaml', '')).toEqual({});
  });

  it('names what is wrong', async () => {
    await expect(load('c.json', '{"allow": [1]}')).rejects.toThrow(/"allow.0": /);
    await expect(load('d.json', '{"allow": ["*"], "insecure": true}')).rejects.toThrow(
      /unknown setting "insecure"/,
    );
    // The hint spells keys as the README and the flags do (QA issue 12), and names the
    // unknown key as the file wrote it.
    const hint = await load('g.yaml', 'bogus-key: 1\n').catch((error: Error) => error.message);
    expect(hint).toContain('unknown setting "bogus-key" (known: ');
    expect(hint).toContain(
      'platform, token, name, allow, label (or labels), pool (or pools), state-dir, drain-timeout, insecure-platform-tls',
    );
    expect(hint).not.toMatch(/stateDir|drainTimeout|insecurePlatformTls/);
    await expect(load('h.yaml', 'state-dir: 5\n')).rejects.toThrow(/"state-dir": /);
    await expect(load('e.json', '[]')).rejects.toThrow(ConfigFileError);
    await expect(load('f.yml', 'a: [')).rejects.toThrow(/not valid YAML/);
  });
});
