/**
 * `gatepool gateway start`: option handling, first-run enrollment, signals. Kept apart from the
 * commander wiring so the standalone entry (main.ts) and the `gatepool` binary share it.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { resolve } from 'node:path';
import { Allowlist, AllowlistError } from './allowlist.js';
import { GatewayAgent, type AgentLog } from './agent.js';
import { enroll, EnrollError } from './enroll.js';
import { loadState, saveState, StateError, statePath, type GatewayState } from './state.js';

export interface GatewayStartOptions {
  platform?: string;
  token?: string;
  name?: string;
  allow: string[];
  label: string[];
  pool: string[];
  stateDir: string;
  drainTimeout: string;
  insecurePlatformTls?: boolean;
}

export class UsageError extends Error {
  override name = 'UsageError';
}

const LABEL_KEY = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$/;

export function parseLabels(pairs: readonly string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    const key = eq > 0 ? pair.slice(0, eq) : '';
    const value = pair.slice(eq + 1);
    if (!LABEL_KEY.test(key) || value.length > 256) {
      throw new UsageError(
        `invalid --label "${pair}": expected key=value (key: letters, digits, . _ / -)`,
      );
    }
    labels[key] = value;
  }
  return labels;
}

export function stderrLog(): AgentLog {
  const line = (message: string): void => {
    process.stderr.write(`${new Date().toISOString()} gatepool-gateway: ${message}\n`);
  };
  return { info: line, warn: line };
}

/** Runs until drained by a signal. Throws UsageError / EnrollError / StateError for exit 1. */
export async function runGateway(options: GatewayStartOptions, log = stderrLog()): Promise<number> {
  let allowlist: Allowlist;
  try {
    allowlist = new Allowlist(options.allow);
  } catch (error) {
    if (error instanceof AllowlistError) throw new UsageError(error.message);
    throw error;
  }
  const labels = parseLabels(options.label);
  const drainSeconds = Number(options.drainTimeout);
  if (!Number.isFinite(drainSeconds) || drainSeconds < 0) {
    throw new UsageError(
      `--drain-timeout must be a number of seconds, got "${options.drainTimeout}"`,
    );
  }
  const stateDir = resolve(options.stateDir);

  let state = await loadState(stateDir);
  if (state) {
    if (options.token) {
      log.info(
        `already enrolled as "${state.name}" (${state.gatewayId}) in ${stateDir}; --token ignored`,
      );
    }
  } else {
    const missing = (['platform', 'token', 'name'] as const).filter((key) => !options[key]);
    if (missing.length) {
      throw new UsageError(
        `not enrolled yet (no ${statePath(stateDir)}): the first run needs ` +
          missing.map((key) => `--${key}`).join(', '),
      );
    }
    state = await enroll({
      platform: options.platform ?? '',
      token: options.token ?? '',
      name: options.name ?? '',
      pools: options.pool,
      insecureTls: options.insecurePlatformTls,
      onRateLimited: (seconds) =>
        log.warn(
          `the platform is limiting enrollments from this address; retrying in ${seconds} s`,
        ),
    });
    const path = await saveState(stateDir, state);
    log.info(`enrolled as gateway "${state.name}" (${state.gatewayId}); state saved to ${path}`);
  }

  checkCredentials(state, stateDir, log);
  const agent = new GatewayAgent({ state, allowlist, labels, log });
  agent.start();

  return new Promise<number>((resolveExit) => {
    let signalled = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (signalled) {
        log.warn(`${signal} again: exiting without waiting for streams`);
        void agent.stop().finally(() => resolveExit(1));
        return;
      }
      signalled = true;
      log.info(`${signal}: draining (up to ${drainSeconds} s)`);
      void agent.drain(drainSeconds * 1000).then((cut) => {
        log.info(cut ? `stopped after cutting ${cut} stream(s)` : 'drained; exiting');
        resolveExit(0);
      });
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}

/** Fails early and clearly on a damaged state file instead of inside every TLS attempt. */
function checkCredentials(state: GatewayState, stateDir: string, log: AgentLog): void {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(state.certificatePem);
    new X509Certificate(state.serverCaCertificatePem);
    if (!cert.checkPrivateKey(createPrivateKey(state.keyPem))) throw new Error('key mismatch');
  } catch (error) {
    throw new StateError(
      `the key or certificates in ${statePath(stateDir)} are unusable (${(error as Error).message}); ` +
        'remove the state directory and enroll again with a new token',
    );
  }
  const daysLeft = (Date.parse(cert.validTo) - Date.now()) / 86_400_000;
  if (daysLeft < 0) {
    log.warn(
      `this gateway's certificate expired on ${cert.validTo}; enroll again with a new token`,
    );
  } else if (daysLeft < 30) {
    log.warn(`this gateway's certificate expires on ${cert.validTo}; enroll again before then`);
  }
}

export function exitMessage(error: unknown): string | null {
  if (error instanceof UsageError || error instanceof EnrollError || error instanceof StateError) {
    return error.message;
  }
  return null;
}
