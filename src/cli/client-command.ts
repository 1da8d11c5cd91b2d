import { ClientError } from '../client/errors.js';

/**
 * Runs a client command: a ClientError is one line on stderr and its exit code (1), anything else
 * is a bug and keeps its stack. Exits explicitly so no leftover socket keeps the process up.
 */
export async function runClientCommand(name: string, fn: () => Promise<number>): Promise<void> {
  let code: number;
  try {
    code = await fn();
  } catch (err) {
    if (!(err instanceof ClientError)) throw err;
    process.stderr.write(`gatepool ${name}: ${err.message}\n`);
    code = err.exitCode;
  }
  process.exit(code);
}
