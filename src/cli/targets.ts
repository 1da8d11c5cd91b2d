import type { Command } from 'commander';
import { isAccessTarget, isObject, PlatformClient, via, type AccessTarget } from '../client/api.js';
import { loadCredentials } from '../client/config.js';
import { runClientCommand } from './client-command.js';
import { formatAuthority } from '../protocol/tunnel.js';

/** `gatepool targets`: the access targets the caller may connect to. */
export function registerTargetsCommand(program: Command): void {
  program
    .command('targets')
    .description('List the access targets you may connect to (`gatepool connect NAME`)')
    .option('--json', 'print JSON instead of a table')
    .action((opts: { json?: boolean }) =>
      runClientCommand('targets', async () => {
        const { platform, token, tokenFrom } = loadCredentials();
        const client = new PlatformClient(platform, token, { tokenFrom });
        const all: AccessTarget[] = [];
        let cursor: string | null = null;
        // Bounded: 1,000 pages of 200 is far beyond any real org; never loops forever.
        for (let page = 0; page < 1000; page++) {
          const q: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
          const res: { items: AccessTarget[]; nextCursor: string | null } = await client.request(
            'GET',
            `/api/v1/access-targets?limit=200${q}`,
            {
              valid: (v) =>
                isObject(v) &&
                Array.isArray(v.items) &&
                v.items.every(isAccessTarget) &&
                (v.nextCursor === null || typeof v.nextCursor === 'string'),
            },
          );
          all.push(...res.items);
          cursor = res.nextCursor;
          if (!cursor) break;
        }
        const usable = all.filter((t) => t.canConnect);
        if (opts.json) {
          process.stdout.write(JSON.stringify(usable, null, 2) + '\n');
          return 0;
        }
        if (all.length && !usable.length) {
          process.stderr.write(
            `${all.length} access target(s) exist, but your role may not connect to them (needs AccessTarget:connect).\n`,
          );
          return 0;
        }
        if (!usable.length) {
          process.stderr.write(
            'No access targets yet: an admin creates them (POST /api/v1/access-targets).\n',
          );
          return 0;
        }
        const rows = [
          ['NAME', 'PROTOCOL', 'ADDRESS', 'VIA'],
          ...usable.map((t) => [t.name, t.protocol, formatAuthority(t.host, t.port), via(t)]),
        ];
        const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
        for (const r of rows)
          process.stdout.write(
            r
              .map((c, i) => c.padEnd(widths[i]!))
              .join('  ')
              .trimEnd() + '\n',
          );
        return 0;
      }),
    );
}
