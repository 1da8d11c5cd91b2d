/**
 * bench/backup: how much a backup of the embedded database holds the running platform up
 * (README, "Backups"). A migrated database plus BENCH_BACKUP_MB of incompressible rows is backed
 * up as the running server does it (backupForOperator) while a 5 ms timer measures the event
 * loop's longest stall and a loop of `SELECT 1` the longest wait for the database. Baseline, in
 * the same run: the same measurement over an equal window with no backup running.
 * Env: BENCH_BACKUP_MB (5), BENCH_ROUNDS (3).
 * Run: node --import tsx bench/backup.ts   (writes bench/results/backup.json)
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Database } from '../src/server/db/client.js';
import { openEmbeddedDatabase } from '../src/server/db/embedded.js';
import { migrate } from '../src/server/db/migrate.js';
import { backupForOperator } from '../src/server/local-admin/service.js';
import { writeResults } from './lib/results.js';

const MB = Number(process.env.BENCH_BACKUP_MB ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const round = (n: number) => Math.round(n * 10) / 10;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

interface Window {
  ms: number;
  loopStallMs: number;
  dbWaitMs: number;
}

/** Longest event-loop stall and longest `SELECT 1` wait while `work` runs. */
async function measure(database: Database, work: () => Promise<unknown>): Promise<Window> {
  let loopStallMs = 0;
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    loopStallMs = Math.max(loopStallMs, now - last);
    last = now;
  }, 5);
  let dbWaitMs = 0;
  let running = true;
  const queries = (async () => {
    for (let i = 0; running && i < 1_000_000; i++) {
      const t = performance.now();
      await database.withScriptTransaction((r) => r.query('SELECT 1'));
      dbWaitMs = Math.max(dbWaitMs, performance.now() - t);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  })();
  const started = performance.now();
  await work();
  const ms = performance.now() - started;
  running = false;
  await queries;
  clearInterval(timer);
  return { ms: round(ms), loopStallMs: round(loopStallMs), dbWaitMs: round(dbWaitMs) };
}

async function main(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'gatepool-bench-backup-'));
  const database = await openEmbeddedDatabase(dataDir);
  try {
    await migrate(database);
    await database.withScriptTransaction(async (r) => {
      await r.exec('CREATE TABLE bench_fill (id serial PRIMARY KEY, b bytea NOT NULL)');
      for (let i = 0; i < MB * 16; i++)
        await r.query('INSERT INTO bench_fill (b) VALUES ($1)', [randomBytes(64 * 1024)]);
    });
    const rounds = [];
    let backupMb = 0;
    for (let i = 0; i < ROUNDS; i++) {
      let bytes = 0;
      const backup = await measure(database, async () => {
        bytes = (await backupForOperator(database, { dataDir, encryptionKey: undefined })).bytes
          .length;
      });
      backupMb = round(bytes / 1e6);
      const idle = await measure(database, () => new Promise((r) => setTimeout(r, backup.ms)));
      rounds.push({ backup, idle });
      console.log(`round ${i + 1}: backup ${backupMb} MB`, { backup, idle });
    }
    const results = {
      bench: 'backup',
      date: new Date().toISOString(),
      node: process.version,
      cpus: os.cpus().length,
      loadAverage: os.loadavg().map((n) => Math.round(n * 100) / 100),
      rounds: ROUNDS,
      backupMb,
      median: {
        backupMs: median(rounds.map((r) => r.backup.ms)),
        loopStallMs: median(rounds.map((r) => r.backup.loopStallMs)),
        idleLoopStallMs: median(rounds.map((r) => r.idle.loopStallMs)),
        dbWaitMs: median(rounds.map((r) => r.backup.dbWaitMs)),
        idleDbWaitMs: median(rounds.map((r) => r.idle.dbWaitMs)),
      },
      // 1 = a backup holds nothing up beyond what an idle platform sees in the same window.
      loopStallVsIdle: round(
        median(rounds.map((r) => r.backup.loopStallMs)) /
          Math.max(1, median(rounds.map((r) => r.idle.loopStallMs))),
      ),
      dbWaitVsIdle: round(
        median(rounds.map((r) => r.backup.dbWaitMs)) /
          Math.max(1, median(rounds.map((r) => r.idle.dbWaitMs))),
      ),
      all: rounds,
    };
    await writeResults('backup', results);
  } finally {
    await database.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
