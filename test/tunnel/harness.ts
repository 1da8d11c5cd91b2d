/**
 * Tunnel test harness: a real TunnelHub on loopback with an in-memory identity store, real PKI,
 * and the real agent spawned as a child process from a state directory written here (so these
 * tests do not depend on the platform API).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import {
  NO_SETTINGS,
  saveState,
  STATE_FORMAT,
  type GatewayState,
} from '../../src/gateway/state.js';
import {
  createGatewayKeyAndCsr,
  createOrgCa,
  createTunnelServerCa,
  createTunnelServerCert,
  signGatewayCsr,
  type KeyAndCert,
} from '../../src/server/gateways/pki.js';
import { TunnelHub, type TunnelHubOptions } from '../../src/server/tunnel/hub.js';
import type { GatewayLive } from '../../src/server/tunnel/session.js';
import { nodeEntry } from '../helpers/entry.js';

export const ROOT = resolve(fileURLToPath(import.meta.url), '../../..');

export const agentFromBuild = (): boolean => process.env.GATEPOOL_AGENT_FROM_BUILD === '1';

/**
 * Node arguments that run the agent: from source (helpers/entry.ts; tests need no build), or,
 * with GATEPOOL_AGENT_FROM_BUILD=1 (set by `npm run bench` after building), the way users run it —
 * `bin/gatepool.js` on the compiled code — so benchmarks measure the shipped agent.
 * GATEPOOL_AGENT_NODE_ARGS adds node flags (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`).
 */
export function agentNodeArgs(): string[] {
  const flags = process.env.GATEPOOL_AGENT_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  return agentFromBuild()
    ? [...flags, join(ROOT, 'bin/gatepool.js')]
    : [...flags, ...nodeEntry('agent')];
}

/** Rejects with `label` when `promise` takes longer than `ms`: every wait in a test is bounded. */
export function within<T>(promise: Promise<T>, ms: number, label: string): Promise<T> {
  return new Promise<T>((resolvePromise, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${label}`)), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolvePromise(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface GatewayRecord {
  orgId: string;
  gatewayId: string;
  name: string;
  fingerprint: string;
}

export interface AgentHandle {
  child: ChildProcess;
  gatewayId: string;
  stateDir: string;
  /** stderr so far. */
  output(): string;
  /** Resolves when stderr matches (bounded). */
  waitForOutput(pattern: RegExp, ms: number): Promise<void>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface HarnessOptions {
  keepaliveMs?: number;
  deadAfterMs?: number;
  hub?: Partial<TunnelHubOptions>;
}

export class TunnelHarness {
  hub!: TunnelHub;
  port = 0;
  orgId = 'org_test';
  orgCa!: KeyAndCert;
  serverCa!: KeyAndCert;
  serverCert!: KeyAndCert;
  readonly records = new Map<string, GatewayRecord>();
  readonly extraCas: string[] = [];
  /** Gateway ids identify() was asked about, in order. */
  readonly identifyCalls: string[] = [];
  /** While set, identify() throws it (the platform's database being down). */
  identifyError: Error | undefined;
  private readonly agents: AgentHandle[] = [];
  private readonly dirs: string[] = [];
  private nextId = 1;

  constructor(private readonly options: HarnessOptions = {}) {}

  static async start(options: HarnessOptions = {}): Promise<TunnelHarness> {
    const harness = new TunnelHarness(options);
    [harness.orgCa, harness.serverCa] = await Promise.all([
      createOrgCa(harness.orgId),
      createTunnelServerCa(),
    ]);
    harness.serverCert = await createTunnelServerCert(harness.serverCa);
    await harness.startHub(0);
    return harness;
  }

  async startHub(port: number): Promise<void> {
    this.hub = new TunnelHub({
      host: '127.0.0.1',
      port,
      serverCertPem: this.serverCert.certPem,
      serverKeyPem: this.serverCert.keyPem,
      caPems: () => [this.orgCa.certPem, ...this.extraCas],
      identify: async (info) => {
        this.identifyCalls.push(info.gatewayId);
        if (this.identifyError) throw this.identifyError;
        const record = this.records.get(info.gatewayId);
        if (!record || record.orgId !== info.orgId || record.fingerprint !== info.fingerprint256) {
          return null;
        }
        return { orgId: record.orgId, gatewayId: record.gatewayId, name: record.name };
      },
      keepaliveMs: this.options.keepaliveMs ?? 250,
      deadAfterMs: this.options.deadAfterMs ?? 1000,
      ...this.options.hub,
    });
    this.port = (await this.hub.listen()).port;
  }

  /** Closes the hub and starts a new one on the same port (a platform restart). */
  async restartHub(downMs = 0): Promise<void> {
    await this.hub.close();
    if (downMs) await sleep(downMs);
    await this.startHub(this.port);
  }

  /**
   * Mints a gateway certificate with `ca` (default: the org CA) and writes the agent's state
   * directory. `register: false` leaves it unknown to identify().
   */
  async createGateway(
    options: { ca?: KeyAndCert; orgId?: string; register?: boolean; name?: string } = {},
  ): Promise<{ gatewayId: string; stateDir: string }> {
    const gatewayId = `gw_${this.nextId++}`;
    const orgId = options.orgId ?? this.orgId;
    const name = options.name ?? `test-${gatewayId}`;
    const ca = options.ca ?? this.orgCa;
    const { keyPem, csrPem } = await createGatewayKeyAndCsr(name);
    const signed = await signGatewayCsr({ ca, csrPem, orgId, gatewayId });
    if (options.register !== false) {
      this.records.set(gatewayId, { orgId, gatewayId, name, fingerprint: signed.fingerprint256 });
    }
    const stateDir = await mkdtemp(join(tmpdir(), 'gatepool-gw-'));
    this.dirs.push(stateDir);
    const state: GatewayState = {
      format: STATE_FORMAT,
      gatewayId,
      orgId,
      name,
      platform: 'http://127.0.0.1:1',
      tunnelAddress: `127.0.0.1:${this.port}`,
      keyPem,
      certificatePem: signed.certPem,
      caCertificatePem: ca.certPem,
      serverCaCertificatePem: this.serverCa.certPem,
      enrolledAt: new Date().toISOString(),
      settings: NO_SETTINGS,
    };
    await saveState(stateDir, state);
    return { gatewayId, stateDir };
  }

  /** Spawns the real agent (`gateway start`) on a state directory (see agentNodeArgs). */
  spawnAgent(gatewayId: string, stateDir: string, args: string[] = []): AgentHandle {
    const child = spawn(
      process.execPath,
      [...agentNodeArgs(), 'gateway', 'start', '--state-dir', stateDir, ...args],
      { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    const watchers = new Set<() => void>();
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      stderr += chunk;
      if (process.env.GATEPOOL_TEST_VERBOSE) process.stderr.write(`[agent ${gatewayId}] ${chunk}`);
      watchers.forEach((watch) => watch());
    });
    const exited = once(child, 'exit').then(([code, signal]) => ({
      code: code as number | null,
      signal: signal as NodeJS.Signals | null,
    }));
    const handle: AgentHandle = {
      child,
      gatewayId,
      stateDir,
      output: () => stderr,
      waitForOutput: (pattern, ms) =>
        within(
          new Promise<void>((resolveWait) => {
            const check = (): void => {
              if (pattern.test(stderr)) {
                watchers.delete(check);
                resolveWait();
              }
            };
            watchers.add(check);
            check();
          }),
          ms,
          `agent output matching ${pattern} (got: ${stderr.slice(-500)})`,
        ),
      exited,
    };
    this.agents.push(handle);
    return handle;
  }

  /** Creates a registered gateway, spawns its agent and waits for its tunnel. */
  async startGateway(args: string[] = [], ms = 10_000): Promise<AgentHandle> {
    const { gatewayId, stateDir } = await this.createGateway();
    const connected = this.waitConnected(gatewayId, ms);
    const agent = this.spawnAgent(gatewayId, stateDir, args);
    await connected;
    return agent;
  }

  waitConnected(gatewayId: string, ms: number): Promise<GatewayLive> {
    const current = this.hub.live(gatewayId);
    if (current) return Promise.resolve(current);
    const hub = this.hub;
    return within(
      new Promise<GatewayLive>((resolveWait) => {
        const onConnected = (live: GatewayLive): void => {
          if (live.gatewayId !== gatewayId) return;
          hub.off('connected', onConnected);
          resolveWait(live);
        };
        hub.on('connected', onConnected);
      }),
      ms,
      `gateway ${gatewayId} connected`,
    );
  }

  waitDisconnected(gatewayId: string, ms: number): Promise<string> {
    const hub = this.hub;
    return within(
      new Promise<string>((resolveWait) => {
        const onDisconnected = (id: string, _orgId: string, reason: string): void => {
          if (id !== gatewayId || hub.live(gatewayId)) return;
          hub.off('disconnected', onDisconnected);
          resolveWait(reason);
        };
        hub.on('disconnected', onDisconnected);
      }),
      ms,
      `gateway ${gatewayId} disconnected`,
    );
  }

  async close(): Promise<void> {
    for (const agent of this.agents) {
      if (agent.child.exitCode === null && agent.child.signalCode === null) {
        agent.child.kill('SIGCONT');
        agent.child.kill('SIGKILL');
      }
    }
    await Promise.all(this.agents.map((agent) => within(agent.exited, 5000, 'agent exit')));
    await this.hub.close();
    await Promise.all(this.dirs.map((dir) => rm(dir, { recursive: true, force: true })));
  }
}

/** Loopback TCP echo server that keeps half-close: it ends its side when the client ends. */
export async function startEchoServer(): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.pipe(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  return {
    port,
    close: () =>
      new Promise<void>((resolveClose) => {
        sockets.forEach((socket) => socket.destroy());
        server.close(() => resolveClose());
      }),
  };
}

/** A port nothing listens on (bound then released). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolveClose) => server.close(() => resolveClose()));
  return port;
}

/** Writes `data`, ends, and collects everything read until the peer ends. */
export function roundTrip(stream: Duplex, data: Buffer, ms = 5000): Promise<Buffer> {
  return within(
    new Promise<Buffer>((resolveRead, reject) => {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => resolveRead(Buffer.concat(chunks)));
      stream.on('error', reject);
      stream.end(data);
    }),
    ms,
    'stream round trip',
  );
}
