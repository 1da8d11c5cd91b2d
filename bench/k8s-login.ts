/**
 * bench/k8s-login: Kubernetes-auth logins per second and latency, through a 3-member gateway
 * pool against directly to the Kubernetes API stand-in, in one run; then the same load while a
 * pool member is SIGKILLed.
 *
 * Topology (loopback): bench client → platform (in this process: HTTP API, tunnel hub, PGlite)
 * → [gateway agent process → ] Kubernetes API stand-in (HTTPS, TokenReview). Each login is a full
 * login: HTTP request, config lookup, TokenReview over a fresh TLS connection (through the tunnel
 * or direct), access token + audit insert.
 *
 * Env: BENCH_SECONDS (per phase, default 5), BENCH_CONCURRENCY (default 16), BENCH_ROUNDS (2),
 *      BENCH_KILL_SECONDS (kill phase length, default 6; the kill happens at one third).
 * Run: node --import tsx bench/k8s-login.ts   (writes bench/results/k8s-login.json)
 */
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import pino from 'pino';
import { buildApp } from '../src/server/app.js';
import { RateLimiter } from '../src/server/auth/rate-limit.js';
import { kubernetesAuthRoutes } from '../src/server/kubernetes-auth/routes.js';
import { startKubeApi } from '../test/fixtures/kube-api.js';
import { must, startBenchPool } from './lib/pool-platform.js';
import { writeResults } from './lib/results.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);
const KILL_SECONDS = Number(process.env.BENCH_KILL_SECONDS ?? 6);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const WARMUP = 50;

function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

interface Sample {
  at: number;
  ms: number;
  ok: boolean;
}

interface Summary {
  logins: number;
  failures: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
}

function summarize(samples: Sample[], seconds: number): Summary {
  const ok = samples
    .filter((s) => s.ok)
    .map((s) => s.ms)
    .sort((a, b) => a - b);
  const round = (n: number) => Math.round(n * 100) / 100;
  return {
    logins: samples.length,
    failures: samples.length - ok.length,
    perSecond: round(ok.length / seconds),
    p50Ms: round(percentile(ok, 50)),
    p99Ms: round(percentile(ok, 99)),
  };
}

/** Closed loop: CONCURRENCY workers log in back to back for `seconds`. */
async function load(
  loginUrl: string,
  identityId: string,
  jwt: string,
  seconds: number,
  during?: (startedAt: number) => void,
): Promise<Sample[]> {
  const samples: Sample[] = [];
  const started = performance.now();
  const until = started + seconds * 1000;
  during?.(started);
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < until) {
        const t0 = performance.now();
        let ok = false;
        try {
          const res = await fetch(loginUrl, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ identityId, jwt }),
          });
          await res.arrayBuffer();
          ok = res.status === 200;
        } catch {
          ok = false;
        }
        samples.push({ at: t0 - started, ms: performance.now() - t0, ok });
      }
    }),
  );
  return samples;
}

async function main(): Promise<void> {
  const kube = await startKubeApi();
  const bench = await startBenchPool({
    label: 'k8s',
    poolName: 'bench-pool',
    members: ['bench-gw-1', 'bench-gw-2', 'bench-gw-3'],
    allow: [`127.0.0.1:${kube.port}`],
    // The direct baseline: the platform dials the stand-in itself, which the operator must allow.
    directTargets: [`127.0.0.1:${kube.port}`],
  });
  const { platform, base, token, agents } = bench;
  // The kubernetes-auth routes on the platform's context, without the per-IP login limit.
  const app = await buildApp(platform.ctx, {
    logger: pino({ level: 'silent' }),
    modules: [
      (a, c) =>
        kubernetesAuthRoutes(a, c, {
          loginLimiter: new RateLimiter(Number.MAX_SAFE_INTEGER, 60_000),
        }),
    ],
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const k8sUrl = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  try {
    const configure = async (name: string, ref: Record<string, unknown>) => {
      const identity = await must(
        base,
        'POST',
        '/api/v1/identities',
        token,
        { name, role: 'viewer' },
        201,
      );
      await must(
        k8sUrl,
        'POST',
        `/api/v1/identities/${identity.id as string}/kubernetes-auth`,
        token,
        {
          kubernetesHost: kube.url,
          caCert: kube.caCert,
          tokenReviewerJwt: kube.reviewerToken,
          allowedNamespaces: ['bench'],
          ...ref,
        },
        201,
      );
      return identity.id as string;
    };
    const directId = await configure('bench-direct', {});
    const poolIdentity = await configure('bench-pool', { gatewayPoolId: bench.poolId });
    const jwt = await kube.serviceAccountToken({
      namespace: 'bench',
      name: 'client',
      expiresIn: 3600,
    });
    const loginUrl = `${k8sUrl}/api/v1/auth/kubernetes-auth/login`;

    // Warm up both paths (JIT, TLS session code, DB caches).
    for (const id of [directId, poolIdentity]) {
      for (let i = 0; i < WARMUP; i++)
        await fetch(loginUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ identityId: id, jwt }),
        }).then((r) => r.arrayBuffer());
    }

    console.log(`k8s-login bench: ${CONCURRENCY} concurrent clients, ${SECONDS}s per phase`);
    // Alternating rounds so neither path benefits from running later (warmer JIT, bigger
    // tables); the ratio uses the last round of each.
    const rounds: Array<{ direct: Summary; pool: Summary }> = [];
    for (let round = 0; round < ROUNDS; round++) {
      const d = summarize(await load(loginUrl, directId, jwt, SECONDS), SECONDS);
      const p = summarize(await load(loginUrl, poolIdentity, jwt, SECONDS), SECONDS);
      console.log(`round ${round + 1} direct to the stand-in   `, d);
      console.log(`round ${round + 1} through a 3-member pool  `, p);
      rounds.push({ direct: d, pool: p });
    }
    const { direct, pool: pooled } = rounds[rounds.length - 1]!;

    const killAt = (KILL_SECONDS * 1000) / 3;
    let killedAt = NaN;
    const killSamples = await load(loginUrl, poolIdentity, jwt, KILL_SECONDS, (started) => {
      setTimeout(() => {
        killedAt = performance.now() - started;
        agents[0]!.kill();
      }, killAt);
    });
    const window = 1000;
    const before = killSamples.filter((s) => s.at < killedAt);
    const during = killSamples.filter((s) => s.at >= killedAt && s.at < killedAt + window);
    const after = killSamples.filter((s) => s.at >= killedAt + window);
    const kill = {
      killedAtMs: Math.round(killedAt),
      total: summarize(killSamples, KILL_SECONDS),
      before: summarize(before, killedAt / 1000),
      firstSecondAfterKill: summarize(during, window / 1000),
      after: summarize(after, (KILL_SECONDS * 1000 - killedAt - window) / 1000),
    };
    console.log('pool, SIGKILL member 1:', JSON.stringify(kill, null, 2));

    const result = {
      bench: 'k8s-login',
      date: new Date().toISOString(),
      machine: {
        cpus: os.cpus().length,
        cpu: os.cpus()[0]?.model ?? 'unknown',
        node: process.version,
      },
      concurrency: CONCURRENCY,
      secondsPerPhase: SECONDS,
      rounds,
      direct,
      pool: pooled,
      ratio: {
        throughputPoolOverDirect: Math.round((pooled.perSecond / direct.perSecond) * 1000) / 1000,
        p50PoolOverDirect: Math.round((pooled.p50Ms / direct.p50Ms) * 1000) / 1000,
        p99PoolOverDirect: Math.round((pooled.p99Ms / direct.p99Ms) * 1000) / 1000,
      },
      kill,
    };
    console.log('ratio (pool / direct):', result.ratio);
    await writeResults('k8s-login', result);
    if (kill.total.failures > 0) process.exitCode = 1;
  } finally {
    await app.close();
    await bench.close();
    await kube.close();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
