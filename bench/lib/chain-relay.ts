/**
 * One link of bench/access's reference relay chains: a process that accepts TCP (or TLS)
 * connections and relays each, both ways with half-close, to one fixed loopback port over TCP
 * (or TLS with the tunnel's settings). Three of them in a row stand where `gatepool connect`,
 * the platform and the gateway stand, with nothing of ours in between: no authentication, no
 * framing, no multiplexing — the floor of any three-process relay on Node on this machine.
 *
 * argv: TO_PORT [--tls-listen CERT_FILE KEY_FILE] [--tls-connect CA_FILE]. Prints its port on
 * one line; stdin closing stops it.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { TUNNEL_TLS } from '../../src/protocol/tunnel.js';

const args = process.argv.slice(2);
const to = Number(args[0]);
const flag = (name: string, n: number): string[] | undefined => {
  const at = args.indexOf(name);
  return at < 0 ? undefined : args.slice(at + 1, at + 1 + n);
};
const listenTls = flag('--tls-listen', 2);
const connectTls = flag('--tls-connect', 1);
if (!Number.isInteger(to)) {
  process.stderr.write(
    'usage: chain-relay.ts TO_PORT [--tls-listen CERT KEY] [--tls-connect CA]\n',
  );
  process.exit(2);
}

function dial(): Duplex {
  if (connectTls?.[0]) {
    return tls.connect({
      host: '127.0.0.1',
      port: to,
      servername: 'localhost',
      ca: [readFileSync(connectTls[0])],
      ...TUNNEL_TLS,
      allowHalfOpen: true,
      noDelay: true,
    } as tls.ConnectionOptions);
  }
  return net.connect({ host: '127.0.0.1', port: to, allowHalfOpen: true, noDelay: true });
}

function relay(client: net.Socket): void {
  client.setNoDelay(true);
  const upstream = dial();
  client.on('error', () => upstream.destroy());
  upstream.on('error', () => client.destroy());
  client.pipe(upstream);
  upstream.pipe(client);
}

const server = listenTls
  ? tls.createServer(
      {
        cert: readFileSync(listenTls[0]!),
        key: readFileSync(listenTls[1]!),
        ...TUNNEL_TLS,
        allowHalfOpen: true,
      } as tls.TlsOptions,
      relay,
    )
  : net.createServer({ allowHalfOpen: true }, relay);
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${(server.address() as net.AddressInfo).port}\n`);
});
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
