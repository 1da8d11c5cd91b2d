/**
 * bench/tunnel: the reverse HTTP/2 tunnel against direct loopback TCP, in one run.
 *
 * Topology (all loopback, one process each): bench client + TunnelHub (as on the platform) →
 * real gateway agent → target server. The direct baseline goes bench client → target server.
 *
 * Measures: bulk throughput each way with the CPU time each process spent per GiB (what the ratio
 * is made of, and comparable across machines), new stream + 1 KiB echo latency, and how long the
 * hub takes to notice a SIGKILLed or SIGSTOPped gateway. Writes bench/results/tunnel.json.
 *
 * Bulk transfers also run, in the same interleaved rounds, through reference relays in place of
 * the gateway (bench/lib/relay.ts): a bare TLS relay on Node with the tunnel's TLS settings, the
 * same through OpenSSL's own loop (socat, when installed), SSH channels (ssh2, the fallback
 * transport DESIGN §2 names) and a plain TCP relay. They are what an
 * extra hop and its encryption cost on this machine with nothing of ours in them, so the tunnel's
 * ratio to direct can be read against what any encrypted relay achieves here.
 * `npm run bench` runs the agent from the build as users do (bin/gatepool.js); run directly with
 * tsx, the agent runs from source (recorded as `agent` in the results).
 *
 * Env: BENCH_BYTES (default 1 GiB), BENCH_THROUGHPUT_RUNS (3), BENCH_ITERATIONS (2000),
 * BENCH_DETECTION_RUNS (5), BENCH_RELAYS=0 skips the reference relays.
 */
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Duplex } from 'node:stream';
import type { GatewayLive } from '../src/server/tunnel/session.js';
import { H2_TUNING } from '../src/protocol/tunnel.js';
import { startReferenceRelays, tcpOpener, type ReferenceRelays } from './lib/reference-relays.js';
import { agentFromBuild, ROOT, sleep, TunnelHarness, within } from '../test/tunnel/harness.js';
import { writeResults } from './lib/results.js';

const GiB = 1024 ** 3;
const BYTES = Number(process.env.BENCH_BYTES ?? GiB);
const RELAYS = process.env.BENCH_RELAYS !== '0';
const ITERATIONS = Number(process.env.BENCH_ITERATIONS ?? 2000);
const WARMUP = Math.min(200, Math.ceil(ITERATIONS / 10));
const DETECTION_RUNS = Number(process.env.BENCH_DETECTION_RUNS ?? 5);
/** Bulk runs per path and direction; the median is reported (a 2-CPU box is noisy). */
const THROUGHPUT_RUNS = Number(process.env.BENCH_THROUGHPUT_RUNS ?? 3);
const WRITE_CHUNK = Buffer.alloc(1024 * 1024, 0xa5);
const ECHO_PAYLOAD = Buffer.alloc(1024, 0x42);

interface Ports {
  sink: number;
  source: number;
  echo: number;
}

type Opener = (port: number) => Promise<Duplex>;

const DIRECTIONS = ['upload', 'download'] as const;
type Direction = (typeof DIRECTIONS)[number];

/** One way bytes can travel from the bench client to the targets, with the processes it uses. */
interface BulkPath {
  name: string;
  open: Opener;
  processes: Processes;
}

interface RelayFigures {
  name: string;
  label: string;
  upload: { mbps: number; ratio: number };
  download: { mbps: number; ratio: number };
}

const directOpen: Opener = tcpOpener((port) => port);

/** Clock ticks per second for /proc/PID/stat times. */
const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** User + system CPU seconds a process has used so far; null where there is no /proc. */
function cpuSeconds(pid: number): number | null {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return null;
  }
}

type Processes = Record<string, number>;
type CpuPerGiB = Record<string, number>;

/** Runs `transfer` and returns its MB/s with the CPU seconds per GiB of each named process. */
async function measured(
  processes: Processes,
  transfer: () => Promise<number>,
): Promise<{ mbps: number; cpu: CpuPerGiB }> {
  const before = Object.entries(processes).map(
    ([name, pid]) => [name, pid, cpuSeconds(pid)] as const,
  );
  const mbps = await transfer();
  const cpu: CpuPerGiB = {};
  for (const [name, pid, start] of before) {
    const end = cpuSeconds(pid);
    if (start !== null && end !== null) cpu[name] = (end - start) / (BYTES / GiB);
  }
  return { mbps, cpu };
}

/** Per process, the median CPU seconds per GiB over the runs, plus their sum. */
function medianCpu(runs: CpuPerGiB[]): CpuPerGiB {
  const names = Object.keys(runs[0] ?? {});
  const result: CpuPerGiB = {};
  for (const name of names) result[name] = median(runs.map((r) => r[name] ?? NaN));
  result.total = names.reduce((sum, name) => sum + (result[name] ?? 0), 0);
  return result;
}

async function startTargets(): Promise<{ ports: Ports; pid: number; stop: () => void }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(ROOT, 'bench/lib/target-server.ts')],
    {
      cwd: ROOT,
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  const lines = createInterface({ input: child.stdout });
  const [line] = (await within(once(lines, 'line'), 10_000, 'target server')) as [string];
  return { ports: JSON.parse(line) as Ports, pid: child.pid ?? 0, stop: () => child.stdin.end() };
}

/** Writes BYTES to the sink and waits for its count: the time covers delivery, not buffering. */
async function upload(open: Opener, port: number, bytes = BYTES): Promise<number> {
  const stream = await open(port);
  const started = performance.now();
  const answer = new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
  let left = bytes;
  while (left > 0) {
    const piece = left >= WRITE_CHUNK.length ? WRITE_CHUNK : WRITE_CHUNK.subarray(0, left);
    left -= piece.length;
    if (!stream.write(piece)) await once(stream, 'drain');
  }
  stream.end();
  const count = Number((await answer).readBigUInt64BE(0));
  const elapsed = performance.now() - started;
  if (count !== bytes) throw new Error(`sink received ${count} of ${bytes} bytes`);
  return bytes / 1e6 / (elapsed / 1000);
}

async function download(open: Opener, port: number): Promise<number> {
  const stream = await open(port);
  const started = performance.now();
  let received = 0;
  const done = new Promise<void>((resolve, reject) => {
    stream.on('data', (chunk: Buffer) => (received += chunk.length));
    stream.on('end', () => resolve());
    stream.on('error', reject);
  });
  const request = Buffer.alloc(8);
  request.writeBigUInt64BE(BigInt(BYTES));
  stream.end(request);
  await done;
  const elapsed = performance.now() - started;
  if (received !== BYTES) throw new Error(`received ${received} of ${BYTES} bytes`);
  return BYTES / 1e6 / (elapsed / 1000);
}

/** New connection/stream, 1 KiB out, 1 KiB back; closed with a normal end afterwards. */
async function echoLatencies(open: Opener, port: number, iterations: number): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < iterations; i += 1) {
    const started = performance.now();
    const stream = await open(port);
    let got = 0;
    const back = new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer): void => {
        got += chunk.length;
        if (got >= ECHO_PAYLOAD.length) {
          stream.off('data', onData);
          resolve();
        }
      };
      stream.on('data', onData);
      stream.once('error', reject);
    });
    stream.write(ECHO_PAYLOAD);
    await back;
    samples.push(performance.now() - started);
    stream.on('error', () => undefined);
    stream.resume();
    stream.end();
  }
  return samples;
}

function percentile(sorted: number[], p: number): number {
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] ?? NaN;
}

function summary(samples: number[]): { p50: number; p99: number; mean: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  const mean = samples.reduce((sum, value) => sum + value, 0) / samples.length;
  return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), mean };
}

function median(values: number[]): number {
  return percentile(
    [...values].sort((a, b) => a - b),
    50,
  );
}

/**
 * Time from the signal to the hub's own events: `noticed` is when pools stop choosing the
 * gateway (its socket closed, or its tunnel went quiet: tunnel/liveness.ts), `unreachable` when
 * the hub declares it gone. A killed gateway's socket closes, so both are the same moment.
 */
async function detection(
  harness: TunnelHarness,
  signal: 'SIGKILL' | 'SIGSTOP',
  runs: number,
): Promise<{ noticed: number[]; unreachable: number[] }> {
  const times = { noticed: [] as number[], unreachable: [] as number[] };
  for (let run = 0; run < runs; run += 1) {
    const agent = await harness.startGateway();
    // Land the failure at a random point of the keepalive cycle, as a real crash would.
    await sleep(300 + Math.random() * harness.hub.keepaliveMs);
    const started = performance.now();
    const since = () => performance.now() - started;
    const disconnected = harness.waitDisconnected(agent.gatewayId, 5000).then(since);
    let quietAfter = Infinity;
    const onQuiet = (live: GatewayLive, quiet: boolean): void => {
      if (live.gatewayId === agent.gatewayId && quiet) quietAfter = Math.min(quietAfter, since());
    };
    harness.hub.on('quiet', onQuiet);
    agent.child.kill(signal);
    const unreachable = await disconnected;
    harness.hub.off('quiet', onQuiet);
    times.noticed.push(Math.min(quietAfter, unreachable));
    times.unreachable.push(unreachable);
    agent.child.kill('SIGKILL');
    await within(agent.exited, 5000, 'agent exit');
  }
  return times;
}

const fmt = (value: number, digits = 0): string => value.toFixed(digits);

/** `platform 0.61 + gateway 1.20 + target 0.30` */
function cpuParts(cpu: CpuPerGiB): string {
  return Object.entries(cpu)
    .filter(([name]) => name !== 'total')
    .map(([name, seconds]) => `${name} ${fmt(seconds, 2)}`)
    .join(' + ');
}

function formatTable(rows: string[][]): string {
  const widths =
    rows[0]?.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? '').length))) ?? [];
  return rows
    .map((row) => row.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join('  '))
    .join('\n');
}

async function main(): Promise<void> {
  // Other work on a small box skews every figure here; recorded so results can be read in context.
  const loadAtStart = os.loadavg();
  const targets = await startTargets();
  const harness = await TunnelHarness.start();
  let closeRelays: (() => Promise<void>) | undefined;
  try {
    const agent = await harness.startGateway(['--allow', '127.0.0.1:*']);
    const tunnelOpen: Opener = (port) => harness.hub.openStream(agent.gatewayId, '127.0.0.1', port);
    const { ports } = targets;
    const gib = (BYTES / GiB).toFixed(2);

    process.stderr.write(`bench/tunnel: bulk ${gib} GiB each way, ${THROUGHPUT_RUNS} runs…\n`);
    // Warm both paths (JIT, windows) with a small transfer first.
    const warm = async (open: Opener): Promise<void> => {
      const stream = await open(ports.echo);
      const back = new Promise<void>((resolve, reject) => {
        stream.on('end', () => resolve());
        stream.on('error', reject);
        stream.resume();
      });
      stream.end(Buffer.alloc(8 * 1024 * 1024));
      await back;
    };
    await warm(directOpen);
    await warm(tunnelOpen);
    const reference: ReferenceRelays | undefined = RELAYS
      ? await startReferenceRelays([ports.sink, ports.source])
      : undefined;
    closeRelays = reference?.close;
    const paths: BulkPath[] = [
      { name: 'direct', open: directOpen, processes: { client: process.pid, target: targets.pid } },
      {
        name: 'tunnel',
        open: tunnelOpen,
        processes: { platform: process.pid, gateway: agent.child.pid ?? 0, target: targets.pid },
      },
      ...(reference?.relays ?? []).map((relay) => ({
        name: relay.name,
        open: relay.open,
        processes: {
          client: process.pid,
          ...(relay.pid ? { relay: relay.pid } : {}),
          target: targets.pid,
        },
      })),
    ];
    // A relay's first connection pays for JIT and TLS session set-up; keep that out of the runs.
    for (const relay of reference?.relays ?? []) await upload(relay.open, ports.sink, 8 << 20);

    const runs = { upload: {}, download: {} } as Record<Direction, Record<string, number[]>>;
    const cpuRuns = { upload: {}, download: {} } as Record<Direction, Record<string, CpuPerGiB[]>>;
    // Interleaved so drift on the machine affects every path alike.
    for (let run = 0; run < THROUGHPUT_RUNS; run += 1) {
      for (const direction of DIRECTIONS) {
        for (const path of paths) {
          const { mbps, cpu } = await measured(path.processes, () =>
            direction === 'upload'
              ? upload(path.open, ports.sink)
              : download(path.open, ports.source),
          );
          (runs[direction][path.name] ??= []).push(mbps);
          (cpuRuns[direction][path.name] ??= []).push(cpu);
        }
      }
    }
    const medianOf = (direction: Direction, name: string): number =>
      median(runs[direction][name] ?? []);
    const throughput = {
      upload: { direct: medianOf('upload', 'direct'), tunnel: medianOf('upload', 'tunnel') },
      download: { direct: medianOf('download', 'direct'), tunnel: medianOf('download', 'tunnel') },
    };
    const cpuPerGiB = Object.fromEntries(
      DIRECTIONS.map((direction) => [
        direction,
        Object.fromEntries(
          paths.map((path) => [path.name, medianCpu(cpuRuns[direction][path.name] ?? [])]),
        ),
      ]),
    ) as Record<Direction, Record<string, CpuPerGiB>>;
    const relays = (reference?.relays ?? []).map((relay) => ({
      name: relay.name,
      label: relay.label,
      ...Object.fromEntries(
        DIRECTIONS.map((direction) => {
          const mbps = medianOf(direction, relay.name);
          return [direction, { mbps, ratio: mbps / medianOf(direction, 'direct') }];
        }),
      ),
    })) as RelayFigures[];
    // How the tunnel compares with the fastest encrypted relay in this run (1 = as fast).
    const tunnelVsBestEncryptedRelay = Object.fromEntries(
      DIRECTIONS.map((direction) => {
        const best = Math.max(
          // Encrypted relays only: the plain TCP one is a floor, not an option.
          ...relays.filter((r) => r.name !== 'tcpRelay').map((r) => r[direction].mbps),
        );
        return [direction, Number.isFinite(best) ? medianOf(direction, 'tunnel') / best : null];
      }),
    ) as Record<Direction, number | null>;
    await reference?.close();
    closeRelays = undefined;

    process.stderr.write(`bench/tunnel: ${ITERATIONS} × (new stream + 1 KiB echo)…\n`);
    await echoLatencies(directOpen, ports.echo, WARMUP);
    await echoLatencies(tunnelOpen, ports.echo, WARMUP);
    const direct = summary(await echoLatencies(directOpen, ports.echo, ITERATIONS));
    const tunnel = summary(await echoLatencies(tunnelOpen, ports.echo, ITERATIONS));

    process.stderr.write(`bench/tunnel: failure detection, ${DETECTION_RUNS} runs each…\n`);
    const kill = await detection(harness, 'SIGKILL', DETECTION_RUNS);
    const stop = await detection(harness, 'SIGSTOP', DETECTION_RUNS);

    const ratio = (tunnelValue: number, directValue: number): number => tunnelValue / directValue;
    const results = {
      bench: 'tunnel',
      date: new Date().toISOString(),
      node: process.version,
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model ?? 'unknown',
      agent: agentFromBuild() ? 'build (bin/gatepool.js)' : 'source (tsx)',
      loadAverage: { start: loadAtStart, end: os.loadavg() },
      config: {
        bytes: BYTES,
        iterations: ITERATIONS,
        warmup: WARMUP,
        detectionRuns: DETECTION_RUNS,
        throughputRuns: THROUGHPUT_RUNS,
        keepaliveMs: harness.hub.keepaliveMs,
        deadAfterMs: harness.hub.deadAfterMs,
        h2: H2_TUNING,
      },
      throughputRunsMBps: runs,
      cpuSecondsPerGiB: cpuPerGiB,
      referenceRelays: { relays, skipped: reference?.skipped ?? [], tunnelVsBestEncryptedRelay },
      throughputMBps: {
        upload: {
          ...throughput.upload,
          ratio: ratio(throughput.upload.tunnel, throughput.upload.direct),
        },
        download: {
          ...throughput.download,
          ratio: ratio(throughput.download.tunnel, throughput.download.direct),
        },
      },
      openEchoMs: {
        direct,
        tunnel,
        p50Ratio: tunnel.p50 / direct.p50,
        p50OverheadMs: tunnel.p50 - direct.p50,
        p99OverheadMs: tunnel.p99 - direct.p99,
      },
      detectionMs: {
        sigkill: { runs: kill.noticed, median: median(kill.noticed) },
        sigstop: {
          runs: stop.noticed,
          median: median(stop.noticed),
          unreachableRuns: stop.unreachable,
          unreachableMedian: median(stop.unreachable),
        },
      },
      targets: {
        throughputRatioAtLeast035:
          Math.min(
            ratio(throughput.upload.tunnel, throughput.upload.direct),
            ratio(throughput.download.tunnel, throughput.download.direct),
          ) >= 0.35,
        p50OpenOverheadBelow1ms: tunnel.p50 - direct.p50 < 1,
        sigkillDetectionBelow1s: median(kill.noticed) < 1000,
        sigstopDetectionBelow1s: median(stop.noticed) < 1000,
      },
    };

    const r = results.throughputMBps;
    const o = results.openEchoMs;
    const rows: string[][] = [
      ['metric', 'direct TCP', 'tunnel', 'ratio / overhead'],
      [
        `upload ${gib} GiB, median (MB/s)`,
        fmt(r.upload.direct),
        fmt(r.upload.tunnel),
        fmt(r.upload.ratio, 2),
      ],
      [
        `download ${gib} GiB, median (MB/s)`,
        fmt(r.download.direct),
        fmt(r.download.tunnel),
        fmt(r.download.ratio, 2),
      ],
      ...DIRECTIONS.map((way) => {
        const cpu = cpuPerGiB[way];
        const direct = cpu.direct ?? {};
        const tunnel = cpu.tunnel ?? {};
        return [
          `CPU s per GiB ${way}, median`,
          fmt(direct.total ?? NaN, 2),
          fmt(tunnel.total ?? NaN, 2),
          `tunnel: ${cpuParts(tunnel)}; direct: ${cpuParts(direct)}`,
        ];
      }),
      [
        'open + 1 KiB echo p50 (ms)',
        fmt(o.direct.p50, 3),
        fmt(o.tunnel.p50, 3),
        `+${fmt(o.p50OverheadMs, 3)} ms (×${fmt(o.p50Ratio, 1)})`,
      ],
      [
        'open + 1 KiB echo p99 (ms)',
        fmt(o.direct.p99, 3),
        fmt(o.tunnel.p99, 3),
        `+${fmt(o.p99OverheadMs, 3)} ms`,
      ],
      [
        'detect SIGKILL, median (ms)',
        '',
        fmt(results.detectionMs.sigkill.median, 1),
        `${kill.noticed.map((v) => fmt(v)).join(' ')} (socket closed)`,
      ],
      [
        'detect SIGSTOP, median (ms)',
        '',
        fmt(results.detectionMs.sigstop.median, 1),
        `${stop.noticed.map((v) => fmt(v)).join(' ')} (tunnel quiet: pools route around it)`,
      ],
      [
        'SIGSTOP → unreachable, median (ms)',
        '',
        fmt(results.detectionMs.sigstop.unreachableMedian, 1),
        `${stop.unreachable.map((v) => fmt(v)).join(' ')} (dead after ${harness.hub.deadAfterMs} ms silent)`,
      ],
    ];
    const table = formatTable(rows);
    process.stdout.write(
      `\nbench/tunnel (${results.node}, ${results.cpus} CPUs, load ${loadAtStart[0]?.toFixed(1)}, agent from ${results.agent})\n${table}\n`,
    );
    if (relays.length > 0) {
      const relayRows: string[][] = [
        [
          'the same bulk transfers through',
          'upload MB/s',
          'ratio',
          'download MB/s',
          'ratio',
          'CPU s per GiB up / down',
        ],
        ...relays.map((relay) => [
          relay.label,
          fmt(relay.upload.mbps),
          fmt(relay.upload.ratio, 2),
          fmt(relay.download.mbps),
          fmt(relay.download.ratio, 2),
          DIRECTIONS.map((way) => cpuParts(cpuPerGiB[way][relay.name] ?? {}) || '–').join(' / '),
        ]),
      ];
      const share = (way: Direction): string => {
        const value = tunnelVsBestEncryptedRelay[way];
        return value === null ? 'n/a' : `${fmt(value, 2)}×`;
      };
      process.stdout.write(
        `\nreference relays (same rounds, nothing of ours but the forwarding)\n${formatTable(relayRows)}\n` +
          `tunnel vs the fastest encrypted relay: upload ${share('upload')}, download ${share('download')}\n`,
      );
    }
    for (const reason of reference?.skipped ?? []) process.stdout.write(`skipped ${reason}\n`);
    process.stdout.write(
      `targets: ${Object.entries(results.targets)
        .map(([name, ok]) => `${name}=${ok ? 'pass' : 'FAIL'}`)
        .join(' ')}\n`,
    );
    await writeResults('tunnel', results);
  } finally {
    await closeRelays?.();
    await harness.close();
    targets.stop();
  }
}

await main();
