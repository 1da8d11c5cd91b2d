/**
 * A failed listen() in one line naming the setting to change. Kept apart from server.ts so the
 * CLI can check ports before it loads the platform's modules.
 */
export function listenError(err: unknown, setting: string): Error {
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'EADDRINUSE')
    return new Error(`${e.message}: the port is in use; choose another with ${setting}.`);
  return e;
}
