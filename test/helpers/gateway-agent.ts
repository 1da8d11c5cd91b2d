/**
 * Real gateway agents for platform-level tests: `gatepool gateway start` as a child process,
 * enrolling through the platform API exactly as a user would.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { agentNodeArgs, ROOT, within } from '../tunnel/harness.js';

export interface RunningAgent {
  child: ChildProcess;
  name: string;
  stateDir: string;
  output(): string;
  waitForOutput(pattern: RegExp, ms: number): Promise<void>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGKILL (after SIGCONT, in case it was stopped). */
  kill(): void;
}

export interface AgentOptions {
  platformUrl: string;
  token?: string;
  name: string;
  allow?: string[];
  labels?: string[];
  pools?: string[];
  stateDir?: string;
  extraArgs?: string[];
  /** Added to the agent's environment (e.g. GATEPOOL_ENROLL_TOKEN). */
  env?: Record<string, string>;
}

/** Tracks agents and their state directories so a test file cleans up after itself. */
export class AgentFleet {
  private readonly agents: RunningAgent[] = [];
  private readonly dirs: string[] = [];

  async stateDir(): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'gatepool-agent-'));
    this.dirs.push(dir);
    return dir;
  }

  async start(opts: AgentOptions): Promise<RunningAgent> {
    const stateDir = opts.stateDir ?? (await this.stateDir());
    const args = ['--platform', opts.platformUrl, '--name', opts.name, '--state-dir', stateDir];
    if (opts.token) args.push('--token', opts.token);
    for (const rule of opts.allow ?? []) args.push('--allow', rule);
    for (const label of opts.labels ?? []) args.push('--label', label);
    for (const pool of opts.pools ?? []) args.push('--pool', pool);
    args.push(...(opts.extraArgs ?? []));
    const child = spawn(process.execPath, [...agentNodeArgs(), 'gateway', 'start', ...args], {
      cwd: ROOT,
      env: { ...process.env, ...opts.env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    const watchers = new Set<() => void>();
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      stderr += chunk;
      if (process.env.GATEPOOL_TEST_VERBOSE) process.stderr.write(`[agent ${opts.name}] ${chunk}`);
      watchers.forEach((w) => w());
    });
    const exited = once(child, 'exit').then(([code, signal]) => ({
      code: code as number | null,
      signal: signal as NodeJS.Signals | null,
    }));
    const agent: RunningAgent = {
      child,
      name: opts.name,
      stateDir,
      output: () => stderr,
      waitForOutput: (pattern, ms) =>
        within(
          new Promise<void>((resolve) => {
            const check = () => {
              if (pattern.test(stderr)) {
                watchers.delete(check);
                resolve();
              }
            };
            watchers.add(check);
            check();
          }),
          ms,
          `agent ${opts.name} output matching ${pattern} (got: ${stderr.slice(-400)})`,
        ),
      exited,
      kill() {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGCONT');
          child.kill('SIGKILL');
        }
      },
    };
    this.agents.push(agent);
    return agent;
  }

  async close(): Promise<void> {
    for (const agent of this.agents) agent.kill();
    await Promise.all(
      this.agents.map((a) => within(a.exited, 5000, `agent ${a.name} exit`).catch(() => undefined)),
    );
    await Promise.all(this.dirs.map((d) => rm(d, { recursive: true, force: true })));
  }
}
