/**
 * `--config FILE`: the agent's settings in a file (JSON, or YAML for `.yaml`/`.yml`), for
 * systemd units and Helm charts that would rather not build long command lines. Keys are the
 * long flag names, kebab-case as the README spells them (`state-dir`; camelCase `stateDir` is
 * also read, and `labels`/`pools` for the repeatable --label/--pool); a flag on the command
 * line wins over the file. Unknown keys are refused so a typo does not silently allow nothing.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';

export class ConfigFileError extends Error {
  override name = 'ConfigFileError';
}

const isScalar = (value: unknown): value is string | number | boolean =>
  ['string', 'number', 'boolean'].includes(typeof value);

// Preprocessing (rather than unions) keeps zod's message about the element that is wrong.
/** One value or a list of them, as a repeatable flag takes. */
const stringList = z.preprocess(
  (value) => (typeof value === 'string' ? [value] : value),
  z.array(z.string()),
);
/** `{key: value}` or a list of `key=value`, like repeated --label. */
const labelList = z.preprocess((value) => {
  if (typeof value === 'string') return [value];
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  return Object.entries(value).map(([key, entry]) => (isScalar(entry) ? `${key}=${entry}` : entry));
}, z.array(z.string()));
const numberText = z.preprocess(
  (value) => (typeof value === 'number' ? String(value) : value),
  z.string(),
);

const ConfigFileSchema = z
  .object({
    platform: z.string().min(1),
    token: z.string().min(1),
    name: z.string().min(1),
    allow: stringList,
    label: labelList,
    pool: stringList,
    stateDir: z.string().min(1),
    drainTimeout: numberText,
    insecurePlatformTls: z.boolean(),
  })
  .partial()
  .strict();

export interface AgentConfigFile {
  platform?: string;
  token?: string;
  name?: string;
  allow?: string[];
  /** As `key=value` pairs, the form --label takes. */
  label?: string[];
  pool?: string[];
  /** Resolved against the config file's directory. */
  stateDir?: string;
  drainTimeout?: string;
  insecurePlatformTls?: boolean;
}

/** Plural spellings read naturally in a file; they mean the repeatable flag. */
const ALIASES: Record<string, string> = { labels: 'label', pools: 'pool' };

const kebab = (key: string): string =>
  key.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`);
const PLURAL: Record<string, string> = { label: 'label (or labels)', pool: 'pool (or pools)' };
/** The keys as the README and the flags spell them (kebab-case long names). */
export const KNOWN_KEYS: string = Object.keys(ConfigFileSchema.shape)
  .map((key) => PLURAL[key] ?? kebab(key))
  .join(', ');

function normalizeKey(key: string): string {
  const camel = key.replace(/-([a-z])/g, (_match, letter: string) => letter.toUpperCase());
  return ALIASES[camel] ?? camel;
}

export async function loadConfigFile(path: string): Promise<AgentConfigFile> {
  const fullPath = resolve(path);
  let text: string;
  try {
    text = await readFile(fullPath, 'utf8');
  } catch (error) {
    throw new ConfigFileError(`cannot read --config ${fullPath}: ${(error as Error).message}`);
  }
  let value: unknown;
  const yaml = /\.ya?ml$/i.test(fullPath);
  try {
    // The YAML parser is loaded only for YAML files: the agent's start-up stays small.
    value = yaml ? (await import('yaml')).parse(text) : JSON.parse(text);
  } catch (error) {
    throw new ConfigFileError(
      `--config ${fullPath} is not valid ${yaml ? 'YAML' : 'JSON'}: ${(error as Error).message}` +
        (yaml ? '' : ' (name the file .yaml or .yml for YAML)'),
    );
  }
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigFileError(`--config ${fullPath} must hold an object of settings`);
  }
  const normalized: Record<string, unknown> = {};
  // Messages name a key as the file spells it, not as it was normalized.
  const spelled = new Map<string, string>();
  for (const [key, entry] of Object.entries(value)) {
    normalized[normalizeKey(key)] = entry;
    spelled.set(normalizeKey(key), key);
  }
  const asWritten = (key: PropertyKey): string => spelled.get(String(key)) ?? String(key);
  const parsed = ConfigFileSchema.safeParse(normalized);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const [head, ...rest] = issue?.path ?? [];
    const where = [...(head === undefined ? [] : [asWritten(head)]), ...rest.map(String)].join('.');
    const message =
      issue?.code === 'unrecognized_keys'
        ? `unknown setting ${issue.keys.map((key) => `"${asWritten(key)}"`).join(', ')} (known: ${KNOWN_KEYS})`
        : `"${where}": ${issue?.message ?? 'invalid'}`;
    throw new ConfigFileError(`--config ${fullPath}: ${message}`);
  }
  const { stateDir, ...rest } = parsed.data;
  return {
    ...rest,
    ...(stateDir !== undefined ? { stateDir: resolve(dirname(fullPath), stateDir) } : {}),
  };
}
