/**
 * The client-stream framing on its own (protocol/access-stream.ts), over a real WebSocket on
 * loopback: half-close each way, a clean end as close 1000, an abort carried with its reason so
 * a broken connection never reads as a finished one, and backpressure without unbounded buffers.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_MESSAGE_BYTES, WsStream } from '../../src/protocol/access-stream.js';
import { sleep, within } from '../tunnel/harness.js';

let server: Server;
let wss: WebSocketServer;
let url: string;

beforeAll(async () => {
  server = createServer();
  wss = new WebSocketServer({ server, perMessageDeflate: false, maxPayload: MAX_MESSAGE_BYTES });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  wss.close();
  await new Promise<void>((r) => server.close(() => r()));
});

/** A connected pair: [client side, server side]. */
async function pair(): Promise<[WsStream, WsStream]> {
  const accepted = new Promise<WsStream>((resolve) =>
    wss.once('connection', (ws) => resolve(new WsStream(ws))),
  );
  const ws = new WebSocket(url, { perMessageDeflate: false });
  await within(new Promise((r) => ws.once('open', r)), 5000, 'ws open');
  return [new WsStream(ws), await within(accepted, 5000, 'ws accepted')];
}

const collect = (s: WsStream) =>
  new Promise<{ data: Buffer; error?: Error }>((resolve) => {
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.once('end', () => resolve({ data: Buffer.concat(chunks) }));
    s.once('error', (error: Error) => resolve({ data: Buffer.concat(chunks), error }));
  });

describe('WsStream', () => {
  it('half-closes each way independently, then closes cleanly', async () => {
    const [a, b] = await pair();
    const atB = collect(b);
    a.end('request');
    expect((await within(atB, 5000, 'b end')).data.toString()).toBe('request');
    // b may still answer after a's half-close, like a TCP peer after FIN.
    const atA = collect(a);
    b.write('answer 1, ');
    await sleep(20);
    b.end('answer 2');
    expect((await within(atA, 5000, 'a end')).data.toString()).toBe('answer 1, answer 2');
    const closed = (x: WsStream) =>
      x.closed ? Promise.resolve() : new Promise((r) => x.once('close', r));
    await within(Promise.all([closed(a), closed(b)]), 5000, 'both closed');
    expect(a.errored).toBeNull();
    expect(b.errored).toBeNull();
    // The WebSocket itself ends with a normal close (1000) once both directions are done.
    const code = (x: WsStream) =>
      new Promise<number>((resolve) => {
        const ws = (x as unknown as { ws: WebSocket }).ws;
        if (ws.readyState === ws.CLOSED) resolve(-1);
        else ws.once('close', (c: number) => resolve(c));
      });
    const codes = await within(Promise.all([code(a), code(b)]), 5000, 'websockets closed');
    for (const c of codes) expect([1000, -1]).toContain(c);
    expect(a.remoteAbort).toBeUndefined();
    expect(b.remoteAbort).toBeUndefined();
  });

  it('one write larger than the largest message the peer accepts arrives intact', async () => {
    const [a, b] = await pair();
    const big = Buffer.alloc(MAX_MESSAGE_BYTES + 1024 * 1024);
    for (let i = 0; i < big.length; i += 4) big.writeUInt32BE(i, i);
    const atB = collect(b);
    a.end(big);
    const got = await within(atB, 10_000, 'big write');
    expect(got.error).toBeUndefined();
    expect(got.data.equals(big)).toBe(true);
    b.end();
  });

  it('an abort reaches the peer as an error with the reason, never as a clean end', async () => {
    const [a, b] = await pair();
    const atA = collect(a);
    // The aborting side errors too (its own reason); only the peer is under test here.
    b.on('error', () => undefined);
    b.write('partial');
    await sleep(20);
    b.abort('connection to pg broken: tunnel to gateway lost');
    const got = await within(atA, 5000, 'a error');
    expect(got.data.toString()).toBe('partial');
    expect(got.error?.message).toBe('connection to pg broken: tunnel to gateway lost');
    expect(a.remoteAbort).toBe('connection to pg broken: tunnel to gateway lost');
  });

  it('a reason longer than a close frame holds arrives whole, non-ASCII included', async () => {
    const [a, b] = await pair();
    const atA = collect(a);
    b.on('error', () => undefined);
    const why =
      'access to orders-db revoked: Permission denied: your role "connector" may not connect ' +
      'AccessTarget (needs AccessTarget:connect on orders-db; ask an admin) — “quoted”';
    expect(why.length).toBeGreaterThan(123);
    b.abort(why);
    const got = await within(atA, 5000, 'a error');
    expect(got.error?.message).toBe(why);
    expect(a.remoteAbort).toBe(why);
  });

  it('a peer whose socket just drops is an error too', async () => {
    const [a, b] = await pair();
    const atA = collect(a);
    b.on('error', () => undefined);
    (b as unknown as { ws: WebSocket }).ws.terminate();
    const got = await within(atA, 5000, 'a error');
    expect(got.error?.message).toMatch(
      /^lost the connection to the peer \(it stopped, or the network dropped\)$/,
    );
  });

  it('a reader that stops reading pushes back on the writer (bounded buffering)', async () => {
    const [a, b] = await pair();
    b.pause();
    const chunk = Buffer.alloc(64 * 1024, 1);
    let written = 0;
    // Write as a well-behaved producer does (waiting for 'drain') until a drain does not come.
    for (let i = 0; i < 4000; i++) {
      written += chunk.length;
      if (a.write(chunk)) continue;
      const drained = await Promise.race([
        new Promise<boolean>((r) => a.once('drain', () => r(true))),
        sleep(500).then(() => false),
      ]);
      if (!drained) break;
    }
    // Stalled: what is in flight is socket buffers plus a few MiB of stream buffers, not all.
    expect(a.writableNeedDrain).toBe(true);
    expect(written).toBeLessThan(64 * 1024 * 1024);
    let received = 0;
    b.on('data', (c: Buffer) => (received += c.length));
    b.resume();
    await within(
      (async () => {
        while (received < written) await sleep(10);
      })(),
      10_000,
      'everything written to arrive',
    );
    expect(received).toBe(written);
    a.destroy();
    b.destroy();
  });
});
