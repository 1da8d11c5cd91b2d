/**
 * bench/access: the machine's PostgreSQL reached directly and through `gatepool connect` (the CLI
 * as users run it) + a pool of two real gateways, in the same run:
 *  1. `pgbench -S` (select-only), 8 clients, persistent connections: TPS ratio, p50/p99 latency;
 *  2. `pgbench -S -C` (a new connection per transaction): TPS ratio, and connection set-up p50
 *     measured with sequential node-postgres connects from a client process of their own, the
 *     paths interleaved in rounds;
 *  3. `pgbench -S -C` through the pool with one member SIGKILLed mid-run: failed connection
 *     attempts (the CLI's "refused" lines: goal 0) and connections broken in flight.
 * In the same run, 1 and 2 also go through reference relays with nothing of ours in them
 * (bench/lib/chain-relay.ts): one socat hop, and three Node processes in a row — where the CLI,
 * the platform and the gateway stand — plain TCP, or with the middle link in TLS like the tunnel.
 * Every process of the path shares this machine's CPUs with pgbench and PostgreSQL, so these say
 * what ratio any relay of that shape reaches here. The whole machine's busy CPU per transaction,
 * direct and through, says what TPS ratio the path could reach with every CPU busy and no added
 * latency at all (persistent.machine.cpuCeilingTpsRatio).
 * Env: BENCH_SECONDS (8 per pgbench run), BENCH_CLIENTS (8).
 * Run: node --import tsx bench/access.ts   (writes bench/results/access.json)
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { createInterface } from 'node:readline';
import os from 'node:os';
import { join } from 'node:path';
import { nodeEntry } from '../test/helpers/entry.js';
import { agentFromBuild, ROOT, sleep, within } from '../test/tunnel/harness.js';
import { createTunnelServerCa, createTunnelServerCert } from '../src/server/gateways/pki.js';
import { must, startBenchPool } from './lib/pool-platform.js';
import { writeResults } from './lib/results.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 8);
const PG = { host: '127.0.0.1', port: 5432, user: 'postgres' };
const CONNECTS = 200;
/** Set-up is measured in this many interleaved rounds (see interleavedSetup). */
const SETUP_ROUNDS = 10;

const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
const round = (n: number) => Math.round(n * 1000) / 1000;

function run(
  file: string,
  args: string[],
  timeoutMs: number,
): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) =>
    execFile(file, args, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (e, out, err) =>
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, out, err }),
    ),
  );
}

interface PgbenchResult {
  tps: number;
  transactions: number;
  p50Ms: number;
  p99Ms: number;
  /** pgbench's own "average connection time" (-C: per transaction). */
  avgConnectionMs: number | null;
  abortedClients: number;
  errors: string[];
}

async function pgbench(port: number, db: string, extra: string[]): Promise<PgbenchResult> {
  const dir = await mkdtemp(join(os.tmpdir(), 'gatepool-pgbench-'));
  try {
    const args = ['-n', '-S', '-c', String(CLIENTS), '-j', '2', '-T', String(SECONDS)];
    args.push('-l', `--log-prefix=${join(dir, 'tx')}`, '-h', '127.0.0.1', '-p', String(port));
    args.push('-U', PG.user, ...extra, db);
    const res = await run('pgbench', args, (SECONDS + 60) * 1000);
    const latencies: number[] = [];
    for (const f of await readdir(dir)) {
      for (const line of (await readFile(join(dir, f), 'utf8')).split('\n')) {
        const us = Number(line.split(' ')[2]);
        if (line && Number.isFinite(us)) latencies.push(us / 1000);
      }
    }
    latencies.sort((a, b) => a - b);
    const text = res.out + res.err;
    const num = (re: RegExp) => {
      const m = re.exec(text);
      return m ? Number(m[1]) : null;
    };
    return {
      tps: round(num(/tps = ([\d.]+)/) ?? 0),
      transactions: num(/number of transactions actually processed: (\d+)/) ?? 0,
      p50Ms: round(pct(latencies, 50)),
      p99Ms: round(pct(latencies, 99)),
      avgConnectionMs: num(/average connection time = ([\d.]+) ms/),
      abortedClients: (text.match(/client \d+ aborted/g) ?? []).length,
      errors: text
        .split('\n')
        .filter((l) => /error|aborted/i.test(l))
        .slice(0, 10),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Set-up times of every path, interleaved: `rounds` rounds of `per` sequential connects on each
 * path in turn, so a slow spell of a shared machine falls on all paths alike instead of on
 * whichever was being measured then. Samples per path, sorted.
 */
async function interleavedSetup(
  ports: Record<string, number>,
  db: string,
  rounds: number,
  per: number,
): Promise<Record<string, number[]>> {
  const samples: Record<string, number[]> = Object.fromEntries(
    Object.keys(ports).map((k) => [k, [] as number[]]),
  );
  for (let r = 0; r < rounds; r++)
    for (const [k, port] of Object.entries(ports))
      samples[k]!.push(...(await connectTimes(port, db, per)));
  for (const s of Object.values(samples)) s.sort((a, b) => a - b);
  return samples;
}

/**
 * Sequential connect + close, `n` times, in a client process of its own
 * (bench/lib/connect-times.mjs): p50/p99 of the set-up alone (TCP, startup, auth).
 */
async function connectTimes(port: number, db: string, n: number): Promise<number[]> {
  const script = join(ROOT, 'bench/lib/connect-times.mjs');
  const res = await run(process.execPath, [script, String(port), db, PG.user, String(n)], 120_000);
  if (res.code !== 0) throw new Error(`connect-times on port ${port}: ${res.err.trim()}`);
  return (JSON.parse(res.out) as number[]).sort((a, b) => a - b);
}

interface Connect {
  child: ChildProcess;
  port: number;
  stderr(): string;
  stop(): Promise<void>;
}

/** `gatepool connect TARGET`: the built CLI when benchmarking the build, else from source. */
async function startConnect(target: string, platform: string, token: string): Promise<Connect> {
  const entry = agentFromBuild() ? [join(ROOT, 'bin/gatepool.js')] : nodeEntry('cli');
  const child = spawn(process.execPath, [...entry, 'connect', target], {
    cwd: ROOT,
    env: { ...process.env, GATEPOOL_PLATFORM: platform, GATEPOOL_TOKEN: token },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (c: string) => (out += c));
  child.stderr?.setEncoding('utf8').on('data', (c: string) => (err += c));
  const exited = once(child, 'exit');
  const port = await within(
    (async () => {
      for (;;) {
        const m = /Forwarding [^ ]+:(\d+) /.exec(out);
        if (m) return Number(m[1]);
        if (child.exitCode !== null) throw new Error(`gatepool connect exited: ${err}`);
        await sleep(20);
      }
    })(),
    30_000,
    'gatepool connect to listen',
  );
  return {
    child,
    port,
    stderr: () => err,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await within(exited, 10_000, 'gatepool connect to exit').catch(() => child.kill('SIGKILL'));
    },
  };
}

interface Relay {
  port: number;
  /** The relay's processes by role, for their CPU time. */
  pids: Record<string, number>;
  close(): void;
}

/** CPU time (user + system) of a process so far, in microseconds; 0 once it is gone. */
function cpuMicros(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1e6) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}
const CLOCK_TICKS = 100;

/** This machine's busy and total CPU time so far (all CPUs), in microseconds, from /proc/stat. */
function machineCpu(): { busy: number; total: number } {
  const [, ...ticks] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/);
  const n = ticks.map(Number);
  const total = n.slice(0, 8).reduce((a, b) => a + b, 0); // guest time is already in user
  const idle = (n[3] ?? 0) + (n[4] ?? 0); // idle + iowait
  return { busy: ((total - idle) * 1e6) / CLOCK_TICKS, total: (total * 1e6) / CLOCK_TICKS };
}

/**
 * Runs `work` and says how many CPU microseconds each process spent per transaction in it, and
 * what the whole machine spent: busy CPU per transaction (pgbench, PostgreSQL, the relay and the
 * kernel under them) and the share of all its CPUs that was busy.
 */
async function cpuPerTransaction(
  pids: Record<string, number>,
  work: () => Promise<PgbenchResult>,
): Promise<{
  result: PgbenchResult;
  cpuMicrosPerTx: Record<string, number>;
  machine: { busyMicrosPerTx: number; busyShare: number };
}> {
  const before = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuMicros(pid)]));
  const machineBefore = machineCpu();
  const result = await work();
  const machineAfter = machineCpu();
  const tx = Math.max(1, result.transactions);
  const per = (k: string, pid: number) => Math.round((cpuMicros(pid) - (before[k] ?? 0)) / tx);
  const busy = machineAfter.busy - machineBefore.busy;
  return {
    result,
    cpuMicrosPerTx: Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, per(k, pid)])),
    machine: {
      busyMicrosPerTx: Math.round(busy / tx),
      busyShare: round(busy / Math.max(1, machineAfter.total - machineBefore.total)),
    },
  };
}

/** One chain-relay.ts process relaying to `to`; its port once it listens. */
async function chainLink(
  to: number,
  extra: string[],
): Promise<{ port: number; child: ChildProcess }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(ROOT, 'bench/lib/chain-relay.ts'), String(to), ...extra],
    { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const [line] = (await within(
    once(createInterface({ input: child.stdout! }), 'line'),
    30_000,
    'chain relay',
  )) as [string];
  return { port: Number(line), child };
}

/** Three relay processes in a row to `target`; with `tls`, the middle link is TLS 1.3. */
async function relayChain(target: number, tls: boolean, dir: string): Promise<Relay> {
  let tlsArgs: { listen: string[]; connect: string[] } = { listen: [], connect: [] };
  if (tls) {
    const ca = await createTunnelServerCa();
    const cert = await createTunnelServerCert(ca);
    const files = ['ca.crt', 'relay.crt', 'relay.key'].map((f) => join(dir, f));
    await writeFile(files[0]!, ca.certPem, { mode: 0o600 });
    await writeFile(files[1]!, cert.certPem, { mode: 0o600 });
    await writeFile(files[2]!, cert.keyPem, { mode: 0o600 });
    tlsArgs = {
      listen: ['--tls-listen', files[1]!, files[2]!],
      connect: ['--tls-connect', files[0]!],
    };
  }
  const gateway = await chainLink(target, tlsArgs.listen);
  const platform = await chainLink(gateway.port, tlsArgs.connect);
  const client = await chainLink(platform.port, []);
  return {
    port: client.port,
    pids: { client: client.child.pid!, platform: platform.child.pid!, gateway: gateway.child.pid! },
    close: () => [gateway, platform, client].forEach((l) => l.child.stdin?.end()),
  };
}

/** `socat` relaying plain TCP to `target` (one hop, C, a process per connection). */
async function socatRelay(target: number): Promise<Relay | null> {
  const probe = net.createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const port = (probe.address() as net.AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));
  const child = spawn(
    'socat',
    [`TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr,fork,nodelay`, `TCP:127.0.0.1:${target},nodelay`],
    { stdio: 'ignore' },
  );
  const failed = await Promise.race([
    once(child, 'error').then(() => true),
    sleep(300).then(() => false),
  ]);
  if (failed || child.exitCode !== null) return null;
  return { port, pids: {}, close: () => child.kill() };
}

async function main(): Promise<void> {
  const db = `gatepool_bench_access_${process.pid}`;
  const admin = ['-X', '-q', '-h', PG.host, '-p', String(PG.port), '-U', PG.user, '-d', 'postgres'];
  await run('psql', [...admin, '-c', `DROP DATABASE IF EXISTS ${db}`], 30_000);
  const created = await run('psql', [...admin, '-c', `CREATE DATABASE ${db}`], 30_000);
  if (created.code !== 0) throw new Error(`CREATE DATABASE: ${created.err}`);
  const init = await run(
    'pgbench',
    ['-i', '-q', '-s', '1', '-h', PG.host, '-U', PG.user, db],
    120_000,
  );
  if (init.code !== 0) throw new Error(`pgbench -i: ${init.err}`);
  const bench = await startBenchPool({
    label: 'access',
    poolName: 'bench',
    members: ['member-1', 'member-2'],
    allow: [`${PG.host}:${PG.port}`],
  });
  // The same path with PostgreSQL targets opened only when a client comes, as before predials
  // (GATEPOOL_ACCESS_PREDIAL=false): its set-up is measured in the same rounds.
  const cold = await startBenchPool({
    label: 'access-cold',
    poolName: 'bench',
    members: ['cold-1', 'cold-2'],
    allow: [`${PG.host}:${PG.port}`],
    env: { GATEPOOL_ACCESS_PREDIAL: 'false' },
  });
  let connect: Connect | undefined;
  let connectCold: Connect | undefined;
  const relayDir = await mkdtemp(join(os.tmpdir(), 'gatepool-bench-chain-'));
  const references: { name: string; label: string; relay: Relay }[] = [];
  try {
    const socat = await socatRelay(PG.port);
    if (socat) references.push({ name: 'socat', label: 'socat, one hop (C)', relay: socat });
    references.push({
      name: 'nodeTcpChain',
      label: 'three Node relay processes, plain TCP',
      relay: await relayChain(PG.port, false, relayDir),
    });
    references.push({
      name: 'nodeTlsChain',
      label: 'three Node relay processes, middle link TLS 1.3',
      relay: await relayChain(PG.port, true, relayDir),
    });
    for (const b of [bench, cold])
      await must(
        b.base,
        'POST',
        '/api/v1/access-targets',
        b.token,
        {
          name: 'pg',
          host: PG.host,
          port: PG.port,
          protocol: 'postgres',
          gatewayPoolId: b.poolId,
        },
        201,
      );
    connect = await startConnect('pg', bench.base, bench.token);
    const through = connect.port;
    connectCold = await startConnect('pg', cold.base, cold.token);
    const throughNoPredial = connectCold.port;
    console.log(`gatepool connect listening on 127.0.0.1:${through}`);

    // Warm every path (JIT, the platform's caches, PostgreSQL's buffers).
    await connectTimes(PG.port, db, 20);
    await connectTimes(through, db, 20);
    await connectTimes(throughNoPredial, db, 20);
    for (const r of references) await connectTimes(r.relay.port, db, 20);

    const direct = await cpuPerTransaction({}, () => pgbench(PG.port, db, []));
    const persistentDirect = direct.result;
    const throughPids: Record<string, number> = { cli: connect.child.pid!, platform: process.pid };
    bench.agents.forEach((a, i) => (throughPids[`gateway${i + 1}`] = a.child.pid!));
    const measured = await cpuPerTransaction(throughPids, () => pgbench(through, db, []));
    const persistentThrough = measured.result;
    console.log('pgbench -S persistent: direct', persistentDirect, 'through', persistentThrough);
    const perConnDirect = await pgbench(PG.port, db, ['-C']);
    const perConnThrough = await pgbench(through, db, ['-C']);
    console.log('pgbench -S -C: direct', perConnDirect, 'through', perConnThrough);
    const setups = await interleavedSetup(
      {
        direct: PG.port,
        through,
        throughNoPredial,
        ...Object.fromEntries(references.map((r) => [r.name, r.relay.port])),
      },
      db,
      SETUP_ROUNDS,
      CONNECTS / SETUP_ROUNDS,
    );
    const setupDirect = setups.direct!;
    const setupThrough = setups.through!;
    const setupNoPredial = setups.throughNoPredial!;
    const referenceRuns = [];
    for (const r of references) {
      const {
        result: persistent,
        cpuMicrosPerTx,
        machine,
      } = await cpuPerTransaction(r.relay.pids, () => pgbench(r.relay.port, db, []));
      const perConn = await pgbench(r.relay.port, db, ['-C']);
      const setup = setups[r.name]!;
      referenceRuns.push({
        name: r.name,
        label: r.label,
        persistentTps: persistent.tps,
        persistentTpsRatio: round(persistent.tps / persistentDirect.tps),
        persistentP50Ms: persistent.p50Ms,
        cpuMicrosPerTransaction: cpuMicrosPerTx,
        machineBusyMicrosPerTx: machine.busyMicrosPerTx,
        perConnectionTps: perConn.tps,
        perConnectionTpsRatio: round(perConn.tps / perConnDirect.tps),
        setupOverheadP50Ms: round(round(pct(setup, 50)) - round(pct(setupDirect, 50))),
      });
      console.log(`reference ${r.label}:`, referenceRuns[referenceRuns.length - 1]);
    }
    const chain = referenceRuns.find((r) => r.name === 'nodeTlsChain');

    // A member SIGKILLed a third of the way into a -C run through the pool.
    const before = connect.stderr().length;
    const killRun = pgbench(through, db, ['-C']);
    await sleep((SECONDS * 1000) / 3);
    bench.agents[0]?.kill();
    const killed = await killRun;
    const lines = connect.stderr().slice(before).split('\n');
    const refused = lines.filter((l) => / refused: /.test(l));
    const broken = lines.filter((l) => / closed: /.test(l));
    console.log('pgbench -S -C with a member SIGKILLed', killed, { refused, broken });

    const p50 = (s: number[]) => round(pct(s, 50));
    const results = {
      bench: 'access',
      date: new Date().toISOString(),
      node: process.version,
      cpus: os.cpus().length,
      loadAverage: os.loadavg().map(round),
      seconds: SECONDS,
      clients: CLIENTS,
      transport:
        'WebSocket on the API port (plain HTTP on loopback here) → HTTP/2 tunnel → gateway',
      persistent: {
        direct: persistentDirect,
        through: persistentThrough,
        tpsRatio: round(persistentThrough.tps / persistentDirect.tps),
        goalTpsRatio: 0.8,
        // 1 = as fast as three bare Node relays with a TLS middle link in this run.
        tpsVsTlsRelayChain: chain ? round(persistentThrough.tps / chain.persistentTps) : null,
        // CPU each process of the path spent per transaction (the gateways share the clients);
        // the platform's figure is this process, which does nothing else during the run.
        cpuMicrosPerTransaction: measured.cpuMicrosPerTx,
        // The whole machine's busy CPU per transaction and the share of its CPUs in use. All
        // CPUs busy at throughBusyMicrosPerTx each bound the path's TPS, so it cannot exceed
        // cpuCeilingTpsRatio however little latency it adds; relayMicrosAllowedForGoal is what
        // the relay (every process of it and the kernel under it) may cost per transaction for
        // the goal ratio, on top of what pgbench and PostgreSQL cost directly.
        machine: {
          cpus: os.cpus().length,
          directBusyMicrosPerTx: direct.machine.busyMicrosPerTx,
          directBusyShare: direct.machine.busyShare,
          throughBusyMicrosPerTx: measured.machine.busyMicrosPerTx,
          throughBusyShare: measured.machine.busyShare,
          cpuCeilingTpsRatio: round(
            direct.machine.busyMicrosPerTx /
              Math.max(1, measured.machine.busyMicrosPerTx * direct.machine.busyShare),
          ),
          relayMicrosAllowedForGoal: round(
            direct.machine.busyMicrosPerTx / (0.8 * direct.machine.busyShare) -
              direct.machine.busyMicrosPerTx,
          ),
        },
      },
      referenceRelays: referenceRuns,
      connectionPerTransaction: {
        direct: perConnDirect,
        through: perConnThrough,
        tpsRatio: round(perConnThrough.tps / perConnDirect.tps),
        setup: {
          connects: CONNECTS,
          interleavedRounds: SETUP_ROUNDS,
          directP50Ms: p50(setupDirect),
          directP99Ms: round(pct(setupDirect, 99)),
          throughP50Ms: p50(setupThrough),
          throughP99Ms: round(pct(setupThrough, 99)),
          overheadP50Ms: round(p50(setupThrough) - p50(setupDirect)),
          goalOverheadP50Ms: 2,
          // The target opened only when the client comes (GATEPOOL_ACCESS_PREDIAL=false).
          noPredialP50Ms: p50(setupNoPredial),
          noPredialP99Ms: round(pct(setupNoPredial, 99)),
          noPredialOverheadP50Ms: round(p50(setupNoPredial) - p50(setupDirect)),
        },
      },
      memberKilled: {
        atSeconds: round(SECONDS / 3),
        run: killed,
        failedConnectionAttempts: refused.length,
        goalFailedConnectionAttempts: 0,
        brokenInFlight: broken.length,
        refusedLines: refused.slice(0, 5),
        brokenLines: broken.slice(0, 5),
      },
    };
    await writeResults('access', results);
  } finally {
    for (const r of references) r.relay.close();
    await rm(relayDir, { recursive: true, force: true });
    await connect?.stop();
    await connectCold?.stop();
    await bench.close();
    await cold.close();
    await run('psql', [...admin, '-c', `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`], 30_000);
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
