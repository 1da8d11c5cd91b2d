// Sequential PostgreSQL connects from a process of their own, as a real client makes them:
// prints the set-up times in ms (connect until ready for a query, TCP + startup + auth) as a JSON
// array. Run by bench/access.ts; a client inside the bench's own process would share the event
// loop and CPU of the platform it measures, which runs there too (bench/lib/pool-platform.ts),
// and be charged for the platform's work (a standby's handshake, audit writes) on one path only.
// Usage: node bench/lib/connect-times.mjs PORT DATABASE USER COUNT
import { performance } from 'node:perf_hooks';
import pg from 'pg';

const [port, database, user, count] = process.argv.slice(2);
const connect = async () => {
  const client = new pg.Client({ host: '127.0.0.1', port: Number(port), user, database });
  const started = performance.now();
  await client.connect();
  const took = performance.now() - started;
  await client.end();
  return took;
};
// Unmeasured: the first connects of a process pay for loading and compiling the client.
for (let i = 0; i < 2; i++) await connect();
const times = [];
for (let i = 0; i < Number(count); i++) times.push(await connect());
process.stdout.write(JSON.stringify(times));
