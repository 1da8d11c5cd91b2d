/**
 * bench/failover: three gateways in a pool, a closed loop of (stream open + 1 KiB echo + close)
 * through runThroughPool for 20 s; at 5 s SIGKILL member 1, at 10 s SIGSTOP member 2.
 * Reports operations, failures (split into failed opens — must be zero — and operations that
 * were already past their gateway's 200 when it died, which are never retried by design),
 * p50/p99 latency per phase, and how long the platform took to notice each fault.
 * Env: BENCH_SECONDS (20), BENCH_CONCURRENCY (8).
 * Run: node --import tsx bench/failover.ts   (writes bench/results/failover.json)
 */
import os from 'node:os';
import type { Duplex } from 'node:stream';
import { NoGatewayAvailableError } from '../src/server/pools/failover.js';
import { roundTrip, sleep, startEchoServer } from '../test/tunnel/harness.js';
import { startBenchPool } from './lib/pool-platform.js';
import { writeResults } from './lib/results.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 20);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8);
const KILL_AT = (SECONDS / 4) * 1000;
const STOP_AT = (SECONDS / 2) * 1000;

interface Sample {
  at: number;
  ms: number;
  outcome: 'ok' | 'open_failed' | 'interrupted';
  /** Times the operation was re-run after its member died mid-operation (idempotent policy). */
  rerun?: number;
  gateway?: string;
  /** Every member this operation used or tried. */
  tried?: string[];
}

const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
const round = (n: number) => Math.round(n * 1000) / 1000;

async function main(): Promise<void> {
  const echo = await startEchoServer();
  const bench = await startBenchPool({
    label: 'failover',
    poolName: 'bench',
    members: ['member-1', 'member-2', 'member-3'],
    allow: [`127.0.0.1:${echo.port}`],
  });
  const { platform, orgId, poolId, agents, ids } = bench;
  try {
    const hub = platform.ctx.directory.hub;
    const payload = Buffer.alloc(1024, 7);
    const op = async (stream: Duplex) => {
      const back = await roundTrip(stream, payload, 5000);
      if (!back.equals(payload)) throw new Error(`echo mismatch: got ${back.length} bytes`);
    };
    // BENCH_POLICY=open-only measures the default (nothing retried after a 200); the default
    // here declares the echo idempotent, so an echo cut by a dying member is re-run elsewhere.
    const idempotent = process.env.BENCH_POLICY !== 'open-only';
    const run = () =>
      platform.ctx.poolRuntime.run(
        orgId,
        { gatewayPoolId: poolId },
        { host: '127.0.0.1', port: echo.port },
        op,
        idempotent ? { retryOperation: () => true } : {},
      );
    for (let i = 0; i < 300; i++) await run(); // warm-up

    const detection: Record<string, number> = {};
    const started = performance.now();
    // Detection is read from the hub's own events, not from a poller in this busy process:
    // 'quiet' is when pools stop choosing the member, 'disconnected' when it is unreachable.
    const watch = (name: string, kind: string, since: number) => {
      const id = ids.get(name) as string;
      const onGone = (gatewayId: string) => {
        if (gatewayId !== id || detection[kind] !== undefined) return;
        detection[kind] = Math.round(performance.now() - since);
        hub.off('disconnected', onGone);
      };
      hub.on('disconnected', onGone);
    };
    let stoppedExcludedAt = Infinity;
    const watchQuiet = (name: string, since: number) => {
      const id = ids.get(name) as string;
      const onQuiet = (live: { gatewayId: string }, quiet: boolean) => {
        if (live.gatewayId !== id || !quiet) return;
        stoppedExcludedAt = performance.now() - started;
        detection.sigstopExcludedMs = Math.round(performance.now() - since);
        hub.off('quiet', onQuiet);
      };
      hub.on('quiet', onQuiet);
    };
    const faults = (async () => {
      await sleep(KILL_AT);
      const killedAt = performance.now();
      agents[0]?.child.kill('SIGKILL');
      watch('member-1', 'sigkillMs', killedAt);
      await sleep(STOP_AT - KILL_AT);
      const stoppedAt = performance.now();
      agents[1]?.child.kill('SIGSTOP');
      watchQuiet('member-2', stoppedAt);
      watch('member-2', 'sigstopUnreachableMs', stoppedAt);
    })();

    const samples: Sample[] = [];
    const errors = new Map<string, number>();
    const until = started + SECONDS * 1000;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (performance.now() < until) {
          const t0 = performance.now();
          try {
            const served = await run();
            samples.push({
              at: t0 - started,
              ms: performance.now() - t0,
              outcome: 'ok',
              gateway: served.gatewayName,
              rerun: served.attempts.filter((a) => a.reason === 'stream_broken').length,
              tried: [...served.attempts.map((a) => a.gatewayName), served.gatewayName],
            });
          } catch (err) {
            if (!(err instanceof NoGatewayAvailableError)) {
              const key = `${Math.floor((t0 - started) / 1000)} s: ${(err as Error).message}`;
              errors.set(key, (errors.get(key) ?? 0) + 1);
            }
            samples.push({
              at: t0 - started,
              ms: performance.now() - t0,
              outcome: err instanceof NoGatewayAvailableError ? 'open_failed' : 'interrupted',
            });
          }
        }
      }),
    );
    await faults;
    agents[1]?.child.kill('SIGCONT');

    const phases: [string, number, number][] = [
      ['before faults', 0, KILL_AT],
      ['1 s after SIGKILL', KILL_AT, KILL_AT + 1000],
      ['after SIGKILL', KILL_AT + 1000, STOP_AT],
      ['1.5 s after SIGSTOP', STOP_AT, STOP_AT + 1500],
      ['after SIGSTOP', STOP_AT + 1500, SECONDS * 1000],
    ];
    const report = phases.map(([phase, from, to]) => {
      const inPhase = samples.filter((s) => s.at >= from && s.at < to);
      const ok = inPhase
        .filter((s) => s.outcome === 'ok')
        .map((s) => s.ms)
        .sort((a, b) => a - b);
      return {
        phase,
        operations: inPhase.length,
        openFailures: inPhase.filter((s) => s.outcome === 'open_failed').length,
        interrupted: inPhase.filter((s) => s.outcome === 'interrupted').length,
        rerun: inPhase.reduce((n, s) => n + (s.rerun ?? 0), 0),
        p50Ms: round(pct(ok, 50)),
        p99Ms: round(pct(ok, 99)),
        // The operations a fault caught: how long the longest one waited before it was served.
        maxMs: round(ok[ok.length - 1] ?? NaN),
      };
    });
    // Proof that exclusion took effect: no operation that started after the 'quiet' event (and
    // succeeded; a failure would be counted above) chose the stopped member.
    const choseStoppedAfterExclusion = samples.filter(
      (s) => s.at > stoppedExcludedAt && s.tried?.includes('member-2'),
    ).length;
    const total = {
      operations: samples.length,
      openFailures: samples.filter((s) => s.outcome === 'open_failed').length,
      interrupted: samples.filter((s) => s.outcome === 'interrupted').length,
      rerun: samples.reduce((n, s) => n + (s.rerun ?? 0), 0),
      failed: samples.filter((s) => s.outcome !== 'ok').length,
      perSecond: Math.round(samples.filter((s) => s.outcome === 'ok').length / SECONDS),
    };
    console.log(
      `bench/failover: ${SECONDS} s, ${CONCURRENCY} workers, 3 members; op = open + 1 KiB echo + close`,
    );
    console.log(
      `policy: ${idempotent ? 'idempotent (an echo cut after 200 is re-run on another member)' : 'open-only (nothing retried after 200)'}`,
    );
    console.log(
      'phase                    ops  open-fail  interrupted  re-run   p50 ms   p99 ms   max ms',
    );
    for (const r of report) {
      console.log(
        `${r.phase.padEnd(22)} ${String(r.operations).padStart(6)} ${String(r.openFailures).padStart(10)} ${String(r.interrupted).padStart(12)} ${String(r.rerun).padStart(7)} ${String(r.p50Ms).padStart(8)} ${String(r.p99Ms).padStart(8)} ${String(r.maxMs).padStart(8)}`,
      );
    }
    console.log(
      `total: ${total.operations} operations (${total.perSecond}/s), ${total.failed} failed (${total.openFailures} failed opens, ${total.interrupted} interrupted after 200), ${total.rerun} re-run`,
    );
    if (errors.size) console.log('interrupted operations:', Object.fromEntries(errors));
    console.log(
      `detection: SIGKILL ${detection.sigkillMs ?? 'n/a'} ms (socket closed); SIGSTOP ${detection.sigstopExcludedMs ?? 'n/a'} ms to leave selection (tunnel quiet), ${detection.sigstopUnreachableMs ?? 'n/a'} ms to unreachable (dead after ${hub.deadAfterMs} ms)`,
    );
    console.log(
      `operations started after the SIGSTOPped member left selection that still chose it: ${choseStoppedAfterExclusion}`,
    );
    const detected =
      (detection.sigkillMs ?? Infinity) < 1000 &&
      (detection.sigstopExcludedMs ?? Infinity) < 1000 &&
      choseStoppedAfterExclusion === 0;
    console.log(
      `targets: zero failed operations → ${total.failed === 0 ? 'met' : 'MISSED'}; detection < 1 s → ${detected ? 'met' : 'MISSED'}`,
    );
    await writeResults('failover', {
      bench: 'failover',
      date: new Date().toISOString(),
      node: process.version,
      cpus: os.cpus().length,
      loadAverage: os.loadavg(),
      seconds: SECONDS,
      policy: idempotent ? 'idempotent' : 'open-only',
      concurrency: CONCURRENCY,
      phases: report,
      interruptedErrors: Object.fromEntries(errors),
      total,
      detection,
      choseStoppedAfterExclusion,
    });
  } finally {
    await bench.close();
    await echo.close();
  }
}

await main();
