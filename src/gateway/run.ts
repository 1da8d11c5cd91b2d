/**
 * `gatepool gateway start`: option handling, first-run enrollment, signals. Kept apart from the
 * commander wiring so the standalone entry (main.ts) and the `gatepool` binary share it.
 *
 * Each setting comes from the command line, else `--config FILE`, else what the state file
 * remembers from the last run; what is used is saved back, so a later restart with only
 * `--state-dir` serves the same targets.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Allowlist, AllowlistError } from './allowlist.js';
import { GatewayAgent, type AgentLog } from './agent.js';
import { ConfigFileError, loadConfigFile, type AgentConfigFile } from './config-file.js';
import { enroll, EnrollError, lookupTunnel } from './enroll.js';
import {
  loadStateFile,
  saveState,
  STATE_FORMAT,
  StateError,
  statePath,
  type AgentSettings,
  type GatewayState,
} from './state.js';

export interface GatewayStartOptions {
  config?: string;
  platform?: string;
  token?: string;
  /** A file holding the enrollment token (so it never shows in the process list). */
  tokenFile?: string;
  name?: string;
  /** Repeatable flags: empty means not given on the command line. */
  allow: string[];
  label: string[];
  pool: string[];
  stateDir?: string;
  drainTimeout?: string;
  insecurePlatformTls?: boolean;
}

export const DEFAULT_STATE_DIR = './.gatepool-gateway';
const DEFAULT_DRAIN_SECONDS = '30';
/**
 * Exit status when the platform deleted or revoked this gateway: distinct so a supervisor can
 * stop restarting it (systemd `RestartPreventExitStatus=3`) and an operator can see why.
 */
export const EXIT_REVOKED = 3;

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

async function readTokenFile(path: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read --token-file ${path}: ${(error as Error).message}`);
  }
  const token = text.trim();
  if (!token) throw new UsageError(`--token-file ${path} is empty: put the enrollment token in it`);
  return token;
}

/** A repeatable flag given on the command line, else the config file's, else undefined. */
function given(flag: string[], file: string[] | undefined): string[] | undefined {
  return flag.length ? flag : file;
}

function parseAllowlist(rules: string[], where: string): Allowlist {
  try {
    return new Allowlist(rules);
  } catch (error) {
    if (error instanceof AllowlistError) throw new UsageError(`${error.message}${where}`);
    throw error;
  }
}

/**
 * Runs until drained by a signal (exit 0) or revoked by the platform (EXIT_REVOKED). Throws
 * UsageError / EnrollError / StateError / ConfigFileError for exit 1.
 */
export async function runGateway(
  options: GatewayStartOptions,
  log = stderrLog(),
  env: Record<string, string | undefined> = process.env,
): Promise<number> {
  const file: AgentConfigFile = options.config ? await loadConfigFile(options.config) : {};
  const allowGiven = given(options.allow, file.allow);
  const labelGiven = given(options.label, file.label);
  const poolGiven = given(options.pool, file.pool);
  // Checked before enrolling, so a typo does not cost the single-use token.
  if (allowGiven) parseAllowlist(allowGiven, '');
  const labels = labelGiven ? parseLabels(labelGiven) : undefined;
  const drainTimeout = options.drainTimeout ?? file.drainTimeout ?? DEFAULT_DRAIN_SECONDS;
  const drainSeconds = Number(drainTimeout);
  if (!Number.isFinite(drainSeconds) || drainSeconds < 0) {
    throw new UsageError(`--drain-timeout must be a number of seconds, got "${drainTimeout}"`);
  }
  const platform = options.platform ?? file.platform;
  // A flag shows in `ps`; the variable and the file do not (README: secrets get no flag).
  const token =
    options.token ??
    (options.tokenFile ? await readTokenFile(options.tokenFile) : undefined) ??
    (env.GATEPOOL_ENROLL_TOKEN?.trim() || undefined) ??
    file.token;
  const name = options.name ?? file.name;
  const stateDir = resolve(options.stateDir ?? file.stateDir ?? DEFAULT_STATE_DIR);

  const loaded = await loadStateFile(stateDir);
  let state: GatewayState;
  if (loaded) {
    state = loaded.state;
    if (token) {
      log.info(
        `already enrolled as "${state.name}" (${state.gatewayId}) in ${stateDir}; --token ignored`,
      );
    }
  } else {
    const missing = (
      [
        ['platform', platform],
        ['token', token],
        ['name', name],
      ] as const
    ).filter(([, value]) => !value);
    if (missing.length) {
      throw new UsageError(
        `not enrolled yet (no ${statePath(stateDir)}): the first run needs ` +
          missing.map(([key]) => `--${key}`).join(', ') +
          (token
            ? ''
            : ' (the token may come from GATEPOOL_ENROLL_TOKEN or --token-file FILE instead)'),
      );
    }
    state = await enroll({
      platform: platform ?? '',
      token: token ?? '',
      name: name ?? '',
      pools: poolGiven ?? [],
      insecureTls: options.insecurePlatformTls ?? file.insecurePlatformTls ?? false,
      onRateLimited: (seconds) =>
        log.warn(
          `the platform is limiting enrollments from this address; retrying in ${seconds} s`,
        ),
      onWarning: (message) => log.warn(message),
    });
    log.info(`enrolled as gateway "${state.name}" (${state.gatewayId})`);
  }

  // The tunnel address came with the enrollment; a platform restored on another host or with
  // other ports has a new one, which only that platform can tell (asked with this gateway's key).
  const tunnelFrom = state.tunnelFrom ?? state.platform;
  const current = loaded && platform ? platform : state.platform;
  let tunnelAddress = state.tunnelAddress;
  let tunnelAsked = tunnelFrom;
  if (loaded && current !== tunnelFrom) {
    const found = await lookupTunnel(current, state, {
      insecureTls: options.insecurePlatformTls ?? file.insecurePlatformTls ?? false,
      timeoutMs: 5000,
    });
    if (found.kind === 'unknown') {
      log.warn(
        `the platform at ${current} does not know gateway "${state.name}" (${state.gatewayId}): ` +
          `enroll this host again with a new token from it and a fresh --state-dir ` +
          `(${statePath(stateDir)} belongs to ${tunnelFrom})`,
      );
      return EXIT_REVOKED;
    }
    if (found.kind === 'failed') {
      // tunnelFrom stays the old platform, so the next start asks again.
      log.warn(
        `the platform is now ${current}, but it could not be asked for its tunnel address ` +
          `(${found.message}): still dialing ${state.tunnelAddress}, the tunnel of ` +
          `${tunnelFrom}. If the platform moved, make ${current} reachable and restart, ` +
          'or enroll this host again with a new token',
      );
    } else {
      tunnelAsked = current;
      tunnelAddress = found.tunnelAddress;
      if (found.tunnelAddress !== state.tunnelAddress)
        log.info(`platform moved: tunnel now ${found.tunnelAddress} (was ${state.tunnelAddress})`);
    }
  }

  const settings: AgentSettings = {
    allow: allowGiven ?? state.settings.allow,
    labels: labels ?? state.settings.labels,
    pools: poolGiven ?? state.settings.pools,
  };
  if (loaded && poolGiven && poolGiven.join('\n') !== state.settings.pools.join('\n')) {
    log.info(
      'pools given at enrollment are kept for reference; an enrolled gateway joins or leaves ' +
        'pools on the platform (gateway pool memberships), not through --pool',
    );
  }
  const { tunnelFrom: _previous, ...rest } = state;
  const updated: GatewayState = {
    ...rest,
    platform: current,
    tunnelAddress,
    // Written only while it differs from `platform`: state files stay as they were otherwise.
    ...(tunnelAsked !== current ? { tunnelFrom: tunnelAsked } : {}),
    settings,
  };
  if (
    !loaded ||
    loaded.format !== STATE_FORMAT ||
    JSON.stringify(updated) !== JSON.stringify(state)
  ) {
    const path = await saveState(stateDir, updated);
    log.info(
      loaded
        ? `settings saved to ${path}; later runs with only --state-dir use them`
        : `state saved to ${path}`,
    );
  }
  state = updated;
  const allowlist = parseAllowlist(
    settings.allow,
    allowGiven ? '' : ` (remembered in ${statePath(stateDir)}; pass --allow to replace)`,
  );
  if (!settings.allow.length) {
    log.warn(
      'no --allow rules: this gateway refuses every stream until it is started with --allow ' +
        '(or "allow" in --config)',
    );
  }

  checkCredentials(state, stateDir, log);
  return new Promise<number>((resolveExit) => {
    const agent = new GatewayAgent({
      state,
      allowlist,
      labels: settings.labels,
      log,
      onRevoked: () => void agent.stop().finally(() => resolveExit(EXIT_REVOKED)),
    });
    agent.start();
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
  if (
    error instanceof UsageError ||
    error instanceof EnrollError ||
    error instanceof StateError ||
    error instanceof ConfigFileError
  ) {
    return error.message;
  }
  return null;
}
