/**
 * Joins two duplex streams both ways with half-close. DESIGN §2 trap 2: `stream.pipeline(a, b, a)`
 * intermittently cut the tail of transfers, so this uses two plain pipes and explicit close
 * handling:
 * - a side's readable end ends the other side's writable (half-close propagates);
 * - a side that errors or closes before its readable ended aborts the other side (destroy), so
 *   an abnormal end is never reported to the peer as a clean end-of-stream.
 */
import type { Duplex } from 'node:stream';

export interface SpliceResult {
  /** True when both directions ended cleanly. */
  clean: boolean;
  error?: Error;
}

export function splice(a: Duplex, b: Duplex): Promise<SpliceResult> {
  return new Promise((resolve) => {
    let firstError: Error | undefined;
    let aborted = false;
    let closed = 0;

    const abortBoth = (error?: Error): void => {
      if (error && !firstError) firstError = error;
      if (aborted) return;
      aborted = true;
      a.unpipe(b);
      b.unpipe(a);
      a.destroy();
      b.destroy();
    };

    const watch = (side: Duplex): void => {
      side.on('error', (error: Error) => abortBoth(error));
      side.on('close', () => {
        if (!side.readableEnded) abortBoth();
        closed += 1;
        if (closed === 2) resolve({ clean: !aborted, error: firstError });
      });
    };

    watch(a);
    watch(b);
    a.pipe(b);
    b.pipe(a);
  });
}
