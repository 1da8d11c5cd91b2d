import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { isPlan } from '../server/license/plans.js';
import { fail } from './server.js';

/** A century: anything longer is meant as "never", which is no --days at all. */
const MAX_DAYS = 36_500;

function positiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0)
    throw new InvalidArgumentError('must be a positive number of days');
  if (n > MAX_DAYS)
    throw new InvalidArgumentError(
      `must be at most ${MAX_DAYS} days; leave --days out for a license that never expires`,
    );
  return n;
}

/** Outside any project tree, so a signing key is never committed by accident. */
function defaultKeyDir(): string {
  const config = process.env.XDG_CONFIG_HOME || join(homedir(), '.config');
  return join(config, 'gatepool', 'license-keys');
}

/** The git working tree containing dir (or the nearest existing parent of it), if any. */
function gitWorkTreeOf(dir: string): string | undefined {
  for (let d = dir; ; d = dirname(d)) {
    if (existsSync(join(d, '.git'))) return d;
    if (dirname(d) === d) return undefined;
  }
}

export function registerLicenseCommands(program: Command): void {
  const license = program
    .command('license')
    .description('create license signing keys and issue licenses');

  license
    .command('keygen')
    .description('write an Ed25519 key pair (private.pem, public.pem) for signing licenses')
    .option('--out <dir>', `directory to write the key pair to (default ${defaultKeyDir()})`)
    .action(async (opts: { out?: string }) => {
      const { writeKeyPair } = await import('../server/license/license.js');
      const out = resolve(opts.out ?? defaultKeyDir());
      const repo = gitWorkTreeOf(out);
      if (repo)
        process.stderr.write(
          `gatepool: warning: ${out} is inside the git working tree ${repo}; never commit ` +
            `private.pem (add the directory to .gitignore, or use a path outside the tree)\n`,
        );
      try {
        const { privatePath, publicPath } = await writeKeyPair(out);
        process.stdout.write(
          `wrote ${privatePath} (keep it secret) and ${publicPath}\n` +
            `start the platform with GATEPOOL_LICENSE_PUBLIC_KEY=${publicPath}\n`,
        );
      } catch (err) {
        fail((err as Error).message);
      }
    });

  license
    .command('issue')
    .description('print a signed license (compact JWS) for an organization')
    .requiredOption('--key <file>', 'private key written by `license keygen`')
    .requiredOption('--plan <plan>', 'free | enterprise')
    // Required: a license for every organization ("*") is a deliberate choice, never a default.
    .requiredOption(
      '--org <id>',
      'the organization id (its Settings page), or "*" for any organization',
    )
    .option('--days <n>', 'validity in days (default: no expiry)', positiveNumber)
    .action(async (opts: { key: string; plan: string; org: string; days?: number }) => {
      if (!isPlan(opts.plan)) fail(`unknown plan "${opts.plan}": use free or enterprise`);
      if (opts.org !== '*' && !/^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$/i.test(opts.org))
        fail(
          `--org "${opts.org}" is not an organization id: give the id (a UUID, shown in the web UI's Settings and by GET /api/v1/me), or "*" for any organization`,
        );
      let privateKeyPem: string;
      try {
        privateKeyPem = readFileSync(opts.key, 'utf8');
      } catch (err) {
        fail(`cannot read ${opts.key}: ${(err as Error).message}`);
      }
      // The key pair sits side by side: taking the wrong file is the likely mistake, so say it.
      if (/-----BEGIN PUBLIC KEY-----/.test(privateKeyPem))
        fail(
          `${opts.key} is a public key: licenses are signed with the private key of the pair ` +
            `(${join(dirname(opts.key), 'private.pem')} when made by \`gatepool license keygen\`); ` +
            `the public one goes to the platform's GATEPOOL_LICENSE_PUBLIC_KEY`,
        );
      if (!/-----BEGIN PRIVATE KEY-----/.test(privateKeyPem))
        fail(
          `${opts.key} is not a PEM private key (PKCS#8, "-----BEGIN PRIVATE KEY-----"): give the private.pem written by \`gatepool license keygen\``,
        );
      const { issueLicense } = await import('../server/license/license.js');
      try {
        const token = await issueLicense({
          privateKeyPem,
          plan: opts.plan,
          org: opts.org,
          days: opts.days,
        });
        process.stdout.write(`${token}\n`);
      } catch (err) {
        fail(`cannot sign with ${opts.key}: ${(err as Error).message}`);
      }
    });
}
