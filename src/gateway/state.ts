/**
 * The agent's persistent state: one JSON file in the state directory, written at enrollment and
 * reused by every later run. It holds the private key, so the directory is 0700 and the file
 * 0600, and it is replaced atomically (write + rename) so a crash never leaves half a key.
 *
 * Format 2 adds the run settings (allow rules, labels, pools): a restart with only `--state-dir`
 * serves what it served before instead of starting with nothing allowed, which made it look
 * healthy in its pools until their health checks failed. Format 1 files load as format 2 with
 * no remembered settings and are rewritten on the next start.
 */
import { chmod, mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';

export const STATE_FILE = 'gateway.json';
export const STATE_FORMAT = 2;

/** What the agent serves; given by flags or --config, remembered between runs. */
export const AgentSettingsSchema = z.object({
  allow: z.array(z.string()),
  labels: z.record(z.string(), z.string()),
  /** Pools asked for at enrollment (membership later is managed on the platform). */
  pools: z.array(z.string()),
});
export type AgentSettings = z.infer<typeof AgentSettingsSchema>;

export const NO_SETTINGS: AgentSettings = { allow: [], labels: {}, pools: [] };

const StateV1Schema = z.object({
  format: z.literal(1),
  gatewayId: z.string().min(1),
  orgId: z.string().min(1),
  name: z.string().min(1),
  /** Platform base URL used at enrollment (informational after that). */
  platform: z.string(),
  /** `host:port` of the platform's tunnel listener. */
  tunnelAddress: z.string().min(1),
  /** PEM PKCS#8 private key; generated on this host, never sent anywhere. */
  keyPem: z.string().min(1),
  /** PEM client certificate issued by the org's gateway CA. */
  certificatePem: z.string().min(1),
  /** PEM org gateway CA that issued the certificate (sent along as the chain). */
  caCertificatePem: z.string().min(1),
  /** PEM CA of the tunnel server: the only CA trusted when dialing the tunnel. */
  serverCaCertificatePem: z.string().min(1),
  enrolledAt: z.string(),
});

export const GatewayStateSchema = StateV1Schema.extend({
  format: z.literal(STATE_FORMAT),
  settings: AgentSettingsSchema,
  /**
   * The platform URL tunnelAddress was learnt from (enrollment, or asking it after a move).
   * Unset in older files: then it is `platform` as saved. When `platform` differs, the agent asks
   * that platform for its tunnel address; until one answers, the old address is kept.
   */
  tunnelFrom: z.string().optional(),
});
export type GatewayState = z.infer<typeof GatewayStateSchema>;

const AnyStateSchema = z.discriminatedUnion('format', [StateV1Schema, GatewayStateSchema]);

export interface LoadedState {
  state: GatewayState;
  /** The format found on disk; older than STATE_FORMAT means the file should be rewritten. */
  format: number;
}

export function statePath(dir: string): string {
  return join(dir, STATE_FILE);
}

export class StateError extends Error {
  override name = 'StateError';
}

/** Loads the state, or null when this directory has never been enrolled. */
export async function loadState(dir: string): Promise<GatewayState | null> {
  return (await loadStateFile(dir))?.state ?? null;
}

/** Like loadState, also telling which format was on disk. */
export async function loadStateFile(dir: string): Promise<LoadedState | null> {
  const path = statePath(dir);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new StateError(`cannot read ${path}: ${(error as Error).message}`);
  }
  const mode = (await stat(path)).mode & 0o777;
  if (mode & 0o077) {
    // Someone widened access to the key; narrow it back rather than refusing to start.
    await chmod(path, 0o600);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new StateError(`${path} is not valid JSON; remove it to enroll again`);
  }
  const format = (value as { format?: unknown } | null)?.format;
  if (typeof format === 'number' && format > STATE_FORMAT) {
    throw new StateError(
      `${path} was written by a newer gatepool (state format ${format}); upgrade this agent`,
    );
  }
  const parsed = AnyStateSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new StateError(
      `${path} is not a gateway state file: ${issue?.path.join('.') || 'format'}: ${issue?.message}`,
    );
  }
  const data = parsed.data;
  const state: GatewayState =
    data.format === 1 ? { ...data, format: STATE_FORMAT, settings: NO_SETTINGS } : data;
  return { state, format: data.format };
}

export async function saveState(dir: string, state: GatewayState): Promise<string> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // mkdir's mode does not apply to an existing directory or under a permissive umask.
  await chmod(dir, 0o700);
  const path = statePath(dir);
  const temp = `${path}.${process.pid}.tmp`;
  await writeFile(temp, `${JSON.stringify(GatewayStateSchema.parse(state), null, 2)}\n`, {
    mode: 0o600,
    flag: 'w',
  });
  await chmod(temp, 0o600);
  await rename(temp, path);
  return path;
}
