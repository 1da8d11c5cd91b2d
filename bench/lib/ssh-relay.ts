/**
 * The SSH variant of bench/tunnel's reference relays: DESIGN §2 names the ssh2 package
 * (direct-tcpip channels over one SSH connection) as the fallback transport should HTTP/2 not
 * meet the throughput target, so the bench measures it beside the tunnel. Server side here (the
 * gateway's place), client side in `sshOpener`. AES-128-GCM like the tunnel's TLS.
 *
 * ssh2 is a devDependency used only by the bench; loaded dynamically so the relay still runs
 * (without this variant) where it is missing.
 */
import { generateKeyPairSync } from 'node:crypto';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { relayToTarget } from './relay-to-target.js';

const CIPHER = 'aes128-gcm@openssh.com';

type Ssh2 = typeof import('ssh2');

async function loadSsh2(): Promise<Ssh2 | null> {
  try {
    return (await import('ssh2')).default as unknown as Ssh2;
  } catch {
    return null;
  }
}

/** Listens for SSH; every direct-tcpip channel is relayed to 127.0.0.1:its destination port. */
export async function startSshRelay(allowedPorts: number[]): Promise<number | null> {
  const ssh2 = await loadSsh2();
  if (!ssh2) return null;
  const hostKey = generateKeyPairSync('ec', {
    namedCurve: 'prime256v1',
    privateKeyEncoding: { type: 'sec1', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  }).privateKey;
  const allowed = new Set(allowedPorts);
  const server = new ssh2.Server(
    { hostKeys: [hostKey], algorithms: { cipher: [CIPHER] } },
    (client) => {
      client.on('error', () => undefined);
      client.on('authentication', (ctx) => ctx.accept());
      client.on('tcpip', (accept, reject, info) => {
        if (!allowed.has(info.destPort)) {
          reject();
          return;
        }
        relayToTarget(accept(), info.destPort);
      });
    },
  );
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port));
  });
}

/** One SSH connection to the relay; each open is a direct-tcpip channel to a target port. */
export async function sshOpener(
  port: number,
): Promise<{ open: (targetPort: number) => Promise<Duplex>; close: () => void } | null> {
  const ssh2 = await loadSsh2();
  if (!ssh2) return null;
  const client = new ssh2.Client();
  await new Promise<void>((resolve, reject) => {
    client.once('ready', () => resolve());
    client.once('error', reject);
    client.connect({
      host: '127.0.0.1',
      port,
      username: 'bench',
      algorithms: { cipher: [CIPHER] },
      // A throwaway key made by the relay a moment ago, on loopback.
      hostVerifier: () => true,
    });
  });
  return {
    open: (targetPort) =>
      new Promise((resolve, reject) => {
        client.forwardOut('127.0.0.1', 0, '127.0.0.1', targetPort, (error, channel) =>
          error ? reject(error) : resolve(channel),
        );
      }),
    close: () => client.end(),
  };
}
