/**
 * Starts bench/tunnel's reference relays (see bench/lib/relay.ts) and hands back an opener per
 * relay. The TLS relays present a certificate from a throwaway tunnel-server CA made with the
 * platform's own PKI; the bench client verifies it and offers the tunnel's TLS settings.
 *
 * `openssl` runs socat's OPENSSL-LISTEN when socat is installed (Debian package `socat`): the same
 * relay through OpenSSL's C loop, which says whether Node's TLS plumbing is what limits. It forks
 * per connection, so its CPU time is not measured.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { createTunnelServerCa, createTunnelServerCert } from '../../src/server/gateways/pki.js';
import { TUNNEL_TLS } from '../../src/protocol/tunnel.js';
import { ROOT, sleep, within } from '../../test/tunnel/harness.js';
import { sshOpener } from './ssh-relay.js';

export type RelayName = 'tlsRelay' | 'opensslRelay' | 'sshRelay' | 'tcpRelay';

export interface ReferenceRelay {
  name: RelayName;
  label: string;
  /** Opens a relayed connection to the given target port (one the relays were started for). */
  open: (targetPort: number) => Promise<Duplex>;
  /** The relay's own process, when its CPU time can be read. */
  pid?: number;
}

export interface ReferenceRelays {
  relays: ReferenceRelay[];
  /** Why a relay is missing (e.g. socat not installed), for the report. */
  skipped: string[];
  close: () => Promise<void>;
}

function tlsOpener(caPem: string, portFor: (target: number) => number) {
  return (target: number): Promise<Duplex> =>
    new Promise((resolve, reject) => {
      const socket = tls.connect({
        host: '127.0.0.1',
        port: portFor(target),
        servername: 'localhost',
        ca: [caPem],
        ...TUNNEL_TLS,
        allowHalfOpen: true,
      } as tls.ConnectionOptions);
      socket.setNoDelay(true);
      socket.once('secureConnect', () => {
        socket.off('error', reject);
        resolve(socket);
      });
      socket.once('error', reject);
    });
}

/** Plain TCP to 127.0.0.1; also bench/tunnel's direct baseline (portFor = identity). */
export function tcpOpener(portFor: (target: number) => number) {
  return (target: number): Promise<Duplex> =>
    new Promise((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port: portFor(target), allowHalfOpen: true });
      socket.setNoDelay(true);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(socket);
      });
      socket.once('error', reject);
    });
}

function portLookup(ports: Record<string, number>): (target: number) => number {
  return (target) => {
    const port = ports[String(target)];
    if (port === undefined) throw new Error(`no reference relay for target port ${target}`);
    return port;
  };
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * Waits (bounded) until a TLS handshake through `open` succeeds. The probe ends politely and
 * waits for the close: cut short, socat logs a failed handshake for it.
 */
async function untilServing(open: () => Promise<Duplex>): Promise<void> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 100; attempt += 1) {
    try {
      const socket = await open();
      socket.resume();
      socket.end();
      await within(once(socket, 'close'), 5000, 'reference relay probe close');
      return;
    } catch (error) {
      lastError = error;
      await sleep(20);
    }
  }
  throw new Error(`reference relay did not come up: ${String(lastError)}`);
}

export async function startReferenceRelays(targetPorts: number[]): Promise<ReferenceRelays> {
  const dir = await mkdtemp(join(os.tmpdir(), 'gatepool-bench-relay-'));
  const ca = await createTunnelServerCa();
  const server = await createTunnelServerCert(ca);
  const certFile = join(dir, 'relay.crt');
  const keyFile = join(dir, 'relay.key');
  await writeFile(certFile, server.certPem, { mode: 0o600 });
  await writeFile(keyFile, server.keyPem, { mode: 0o600 });

  const children: ChildProcess[] = [];
  const node = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      join(ROOT, 'bench/lib/relay.ts'),
      certFile,
      keyFile,
      ...targetPorts.map(String),
    ],
    { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] },
  );
  children.push(node);
  const [line] = (await within(
    once(createInterface({ input: node.stdout }), 'line'),
    15_000,
    'reference relay',
  )) as [string];
  const ports = JSON.parse(line) as {
    tls: Record<string, number>;
    tcp: Record<string, number>;
    ssh: number | null;
  };
  const relays: ReferenceRelay[] = [
    {
      name: 'tlsRelay',
      label: 'TLS relay, Node (no HTTP/2)',
      open: tlsOpener(ca.certPem, portLookup(ports.tls)),
      pid: node.pid,
    },
  ];
  const skipped: string[] = [];

  if (spawnSync('socat', ['-V'], { stdio: 'ignore' }).status === 0) {
    const socatPorts: Record<string, number> = {};
    for (const target of targetPorts) {
      const port = await freePort();
      socatPorts[String(target)] = port;
      children.push(
        spawn(
          'socat',
          [
            '-b',
            String(1024 * 1024),
            `OPENSSL-LISTEN:${port},bind=127.0.0.1,reuseaddr,fork,cert=${certFile},key=${keyFile},verify=0`,
            `TCP:127.0.0.1:${target},nodelay`,
          ],
          { stdio: ['ignore', 'ignore', 'inherit'] },
        ),
      );
    }
    const open = tlsOpener(ca.certPem, portLookup(socatPorts));
    for (const target of targetPorts) await untilServing(() => open(target));
    relays.push({ name: 'opensslRelay', label: 'TLS relay, OpenSSL (socat)', open });
  } else {
    skipped.push('opensslRelay: socat is not installed (apt-get install socat)');
  }
  const ssh = ports.ssh === null ? null : await sshOpener(ports.ssh);
  if (ssh) {
    relays.push({
      name: 'sshRelay',
      label: 'SSH channels, ssh2 (DESIGN fallback)',
      open: ssh.open,
      pid: node.pid,
    });
  } else {
    skipped.push('sshRelay: the ssh2 package is not installed (npm install)');
  }
  relays.push({
    name: 'tcpRelay',
    label: 'TCP relay, Node (no TLS)',
    open: tcpOpener(portLookup(ports.tcp)),
    pid: node.pid,
  });

  return {
    relays,
    skipped,
    close: async () => {
      ssh?.close();
      node.stdin?.end();
      for (const child of children.slice(1)) child.kill();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
