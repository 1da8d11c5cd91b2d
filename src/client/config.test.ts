/** Which token goes to which platform: a saved token never leaves for another platform. */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { configPath, loadCredentials, saveCredentials } from './config.js';

const dir = mkdtempSync(join(tmpdir(), 'gatepool-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** An environment whose saved login is `saved` (none when undefined). */
function envWith(
  saved: { platform: string; token: string } | undefined,
  vars: Record<string, string> = {},
): Record<string, string | undefined> {
  const env = { XDG_CONFIG_HOME: join(dir, String(Math.random())), ...vars };
  if (saved) saveCredentials(saved, env);
  return env;
}

const saved = { platform: 'http://saved-host:8080', token: 'gps_saved' };

describe('loadCredentials', () => {
  it('uses the saved login alone, and with GATEPOOL_PLATFORM naming the same platform', () => {
    expect(loadCredentials(envWith(saved))).toEqual({ ...saved, tokenFrom: 'saved' });
    // Written differently, the same platform: case, trailing slash, default port.
    for (const same of ['http://SAVED-host:8080/', 'http://saved-host:8080//'])
      expect(loadCredentials(envWith(saved, { GATEPOOL_PLATFORM: same }))).toEqual({
        ...saved,
        tokenFrom: 'saved',
      });
    const https = { platform: 'https://gatepool.example.com', token: 'gps_x' };
    expect(
      loadCredentials(envWith(https, { GATEPOOL_PLATFORM: 'https://gatepool.example.com:443' })),
    ).toEqual({ ...https, tokenFrom: 'saved' });
  });

  it('refuses to send the saved token to another platform, in one line saying what to do', () => {
    expect(() =>
      loadCredentials(envWith(saved, { GATEPOOL_PLATFORM: 'http://other-host' })),
    ).toThrow(
      'not logged in to http://other-host (the saved login is for http://saved-host:8080): run `gatepool login --platform http://other-host`, or set GATEPOOL_TOKEN',
    );
    // Another scheme or port is another platform too.
    for (const other of ['https://saved-host:8080', 'http://saved-host:8081'])
      expect(() => loadCredentials(envWith(saved, { GATEPOOL_PLATFORM: other }))).toThrow(
        /^not logged in to /,
      );
  });

  it('GATEPOOL_TOKEN goes with GATEPOOL_PLATFORM, or else with the saved platform', () => {
    expect(
      loadCredentials(
        envWith(saved, { GATEPOOL_PLATFORM: 'http://other-host', GATEPOOL_TOKEN: 'gps_env' }),
      ),
    ).toEqual({ platform: 'http://other-host', token: 'gps_env', tokenFrom: 'GATEPOOL_TOKEN' });
    expect(loadCredentials(envWith(saved, { GATEPOOL_TOKEN: 'gps_env' }))).toEqual({
      platform: saved.platform,
      token: 'gps_env',
      tokenFrom: 'GATEPOOL_TOKEN',
    });
    expect(() => loadCredentials(envWith(undefined, { GATEPOOL_TOKEN: 'gps_env' }))).toThrow(
      'GATEPOOL_TOKEN is set but no platform is known: set GATEPOOL_PLATFORM too, e.g. https://gatepool.example.com',
    );
  });

  it('without a saved login says how to log in', () => {
    expect(() => loadCredentials(envWith(undefined))).toThrow(
      'not logged in: run `gatepool login --platform URL` (or set GATEPOOL_PLATFORM and GATEPOOL_TOKEN)',
    );
    expect(() =>
      loadCredentials(envWith(undefined, { GATEPOOL_PLATFORM: 'http://other-host' })),
    ).toThrow(
      'not logged in to http://other-host: run `gatepool login --platform http://other-host`, or set GATEPOOL_TOKEN',
    );
  });

  it('saves only the platform and the token, whatever else the credentials carry', () => {
    const env = envWith(undefined);
    saveCredentials(loadCredentials(envWith(saved, { GATEPOOL_TOKEN: 'gps_env' })), env);
    expect(JSON.parse(readFileSync(configPath(env), 'utf8'))).toEqual({
      platform: saved.platform,
      token: 'gps_env',
    });
  });
});
