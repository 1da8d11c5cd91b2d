/**
 * Crash safety of the embedded database, proven with real processes (issue 11): a `gatepool
 * server` is SIGKILLed during a burst of writes, ROUNDS times, and restarted each time. It must
 * start every time, and every write it acknowledged (201) before dying must be there.
 *
 * What this covers: the process dying (SIGKILL, OOM kill, a crash). PGlite runs with fsync off,
 * so what it wrote is in the kernel's page cache, which survives the process; the README says
 * what a power loss or kernel crash can cost.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { bootstrap, waitFor } from '../helpers/platform.js';
import { identityNames, startServer, type ServerProcess } from './processes.js';

const ROUNDS = 20;
const WRITERS = 4;

let dir: string | undefined;
let server: ServerProcess | undefined;
afterAll(async () => {
  await server?.kill('SIGKILL');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

it(`survives ${ROUNDS} SIGKILLs during writes without losing an acknowledged one`, async () => {
  dir = mkdtempSync(join(tmpdir(), 'gatepool-crash-'));
  const env = { GATEPOOL_DATA_DIR: join(dir, 'data'), GATEPOOL_LOG_LEVEL: 'error' };
  server = await startServer(env);
  const { token } = await bootstrap(server.url);
  const acked = new Set<string>();
  let unacknowledged = 0;
  const starts: number[] = [];

  for (let round = 0; round < ROUNDS; round++) {
    const current = server;
    let killed = false;
    const ackedThisRound = () => [...acked].filter((n) => n.startsWith(`r${round}-`)).length;
    const writers = Array.from({ length: WRITERS }, async (_, w) => {
      for (let i = 0; !killed && i < 2000; i++) {
        const name = `r${round}-w${w}-${i}`;
        try {
          const res = await current.api(token).post('/api/v1/identities', { name, role: 'viewer' });
          if (res.status === 201) acked.add(name);
          else if (!killed) throw new Error(`POST answered ${res.status}: ${res.text}`);
        } catch (err) {
          // A request the kill cut off was never acknowledged: it may or may not be stored.
          if (!killed) throw err;
          unacknowledged++;
        }
      }
    });
    // Kill somewhere inside the burst, not at its start: after a few writes, plus 0–60 ms.
    await waitFor(() => ackedThisRound() >= 3 + (round % 5), 30_000, `writes of round ${round}`);
    await new Promise((r) => setTimeout(r, (round * 13) % 60));
    current.proc.kill('SIGKILL');
    killed = true;
    expect(await current.exited).toBe('SIGKILL');
    await Promise.all(writers);

    const t0 = Date.now();
    server = await startServer(env);
    starts.push(Date.now() - t0);
    const names = await identityNames(token, server);
    const lost = [...acked].filter((n) => !names.has(n));
    expect(lost, `round ${round}: acknowledged writes missing after restart`).toEqual([]);
  }
  // The log of the last start, for the record, and no sign of a recovery gone wrong.
  expect(server.output()).not.toMatch(/PANIC|Aborted|invalid checkpoint/);
  console.info(
    `crash test: ${ROUNDS} kills, ${acked.size} acknowledged writes all kept, ` +
      `${unacknowledged} cut off; restart ms: median ${starts.sort((a, b) => a - b)[starts.length >> 1]}, max ${starts.at(-1)}`,
  );
}, 400_000);
