/**
 * What every reference relay does with an accepted connection, the way the gateway does it:
 * dial the loopback target, forwardBatched towards it, pipe back, propagate ends, and tear both
 * down when either fails.
 */
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { forwardBatched } from '../../src/protocol/forward.js';

export function relayToTarget(client: Duplex, targetPort: number): void {
  const target = net.connect({ host: '127.0.0.1', port: targetPort, allowHalfOpen: true });
  target.setNoDelay(true);
  client.on('error', () => target.destroy());
  target.on('error', () => client.destroy());
  forwardBatched(client, target);
  client.on('end', () => target.end());
  target.pipe(client);
}
