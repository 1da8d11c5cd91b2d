/**
 * The agent's persistent state: one JSON file in the state directory, written once at enrollment
 * and reused by every later run. It holds the private key, so the directory is 0700 and the file
 * 0600, and it is replaced atomically (write + rename) so a crash never leaves half a key.
 */
import { chmod, mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';

export const STATE_FILE = 'gateway.json';
export const STATE_FORMAT = 1;

export const GatewayStateSchema = z.object({
  format: z.literal(STATE_FORMAT),
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
export type GatewayState = z.infer<typeof GatewayStateSchema>;

export function statePath(dir: string): string {
  return join(dir, STATE_FILE);
}

export class StateError extends Error {
  override name = 'StateError';
}

/** Loads the state, or null when this directory has never been enrolled. */
export async function loadState(dir: string): Promise<GatewayState | null> {
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
  const parsed = GatewayStateSchema.safeParse(value);
  if (!parsed.success) {
    throw new StateError(`${path} is not a gateway state file: ${parsed.error.issues[0]?.message}`);
  }
  return parsed.data;
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
