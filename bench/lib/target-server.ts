/**
 * Benchmark targets, run as their own process so the target's work does not share an event loop
 * with the client (in the tunnel case the platform and gateway are separate processes too).
 * Prints one JSON line with the ports:
 * - sink: counts what it receives; when the client ends, answers the byte count and ends;
 * - source: reads an 8-byte big-endian length, sends that many bytes and ends;
 * - echo: echoes, ends when the client ends.
 */
import net from 'node:net';

const CHUNK = Buffer.alloc(1024 * 1024, 0x5a);

function listen(handler: (socket: net.Socket) => void): Promise<number> {
  const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
    socket.on('error', () => undefined);
    handler(socket);
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port));
  });
}

function sink(socket: net.Socket): void {
  let total = 0;
  socket.on('data', (chunk: Buffer) => (total += chunk.length));
  socket.on('end', () => {
    const answer = Buffer.alloc(8);
    answer.writeBigUInt64BE(BigInt(total));
    socket.end(answer);
  });
}

function source(socket: net.Socket): void {
  let header = Buffer.alloc(0);
  const onData = (chunk: Buffer): void => {
    header = Buffer.concat([header, chunk]);
    if (header.length < 8) return;
    socket.off('data', onData);
    socket.resume();
    let left = Number(header.readBigUInt64BE(0));
    const pump = (): void => {
      while (left > 0) {
        const piece = left >= CHUNK.length ? CHUNK : CHUNK.subarray(0, left);
        left -= piece.length;
        if (!socket.write(piece)) {
          socket.once('drain', pump);
          return;
        }
      }
      socket.end();
    };
    pump();
  };
  socket.on('data', onData);
}

function echo(socket: net.Socket): void {
  socket.pipe(socket);
}

const [sinkPort, sourcePort, echoPort] = await Promise.all([
  listen(sink),
  listen(source),
  listen(echo),
]);
process.stdout.write(`${JSON.stringify({ sink: sinkPort, source: sourcePort, echo: echoPort })}\n`);
// The parent closes stdin to stop us.
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
