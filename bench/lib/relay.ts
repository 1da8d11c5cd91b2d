/**
 * Reference relays for bench/tunnel, run as their own process (the gateway's stand-in): what a
 * gateway would cost with nothing of ours in it. Each listener accepts a connection, dials one
 * fixed target and relays bytes both ways as the gateway does (relay-to-target.ts):
 * - `tls`: TLS 1.3 with the tunnel's settings (TUNNEL_TLS), no HTTP/2: the floor of any
 *   encrypted tunnel written on Node;
 * - `tcp`: plain TCP, no TLS: the cost of the extra hop alone;
 * - `ssh`: one SSH connection with a direct-tcpip channel per relayed connection (ssh-relay.ts),
 *   the fallback transport DESIGN §2 names; one port for all targets, null without ssh2.
 *
 * argv: CERT_FILE KEY_FILE then TARGET_PORT… (one pair of listeners per target port). Prints one
 * JSON line `{"tls": {TARGET: PORT}, "tcp": {TARGET: PORT}, "ssh": PORT | null}`; stdin closing
 * stops it.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { TUNNEL_TLS } from '../../src/protocol/tunnel.js';
import { relayToTarget } from './relay-to-target.js';
import { startSshRelay } from './ssh-relay.js';

const [certFile, keyFile, ...targets] = process.argv.slice(2);
if (!certFile || !keyFile || targets.length === 0) {
  process.stderr.write('usage: relay.ts CERT_FILE KEY_FILE TARGET_PORT…\n');
  process.exit(2);
}
const cert = readFileSync(certFile);
const key = readFileSync(keyFile);

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port));
  });
}

const ports: {
  tls: Record<string, number>;
  tcp: Record<string, number>;
  ssh: number | null;
} = { tls: {}, tcp: {}, ssh: null };
for (const target of targets) {
  const port = Number(target);
  ports.tls[target] = await listen(
    tls.createServer({ cert, key, ...TUNNEL_TLS, allowHalfOpen: true }, (socket) =>
      relayToTarget(socket, port),
    ),
  );
  ports.tcp[target] = await listen(
    net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) =>
      relayToTarget(socket, port),
    ),
  );
}
ports.ssh = await startSshRelay(targets.map(Number));
process.stdout.write(`${JSON.stringify(ports)}\n`);
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
