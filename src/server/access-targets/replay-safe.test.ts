import { describe, expect, it } from 'vitest';
import { postgresFirstPacket } from './replay-safe.js';

/** A packet as a PostgreSQL client sends it: Int32 length (itself included), Int32 code, body. */
function packet(code: number, body = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(8 + body.length, 0);
  head.writeUInt32BE(code, 4);
  return Buffer.concat([head, body]);
}
const params = Buffer.from('user\0postgres\0database\0test\0\0');
const startup = packet(196608, params);

describe('postgresFirstPacket: which first bytes may travel ahead of the 200', () => {
  it('a complete StartupMessage, SSLRequest or GSSENCRequest is safe, with its length', () => {
    expect(postgresFirstPacket(startup)).toEqual({ kind: 'safe', length: startup.length });
    // Protocol 3.2 (PostgreSQL 18) is still a startup packet.
    expect(postgresFirstPacket(packet(196610, params)).kind).toBe('safe');
    expect(postgresFirstPacket(packet(80877103))).toEqual({ kind: 'safe', length: 8 });
    expect(postgresFirstPacket(packet(80877104))).toEqual({ kind: 'safe', length: 8 });
  });

  it('says only the first packet is safe when more bytes follow it', () => {
    const both = Buffer.concat([packet(80877103), Buffer.from('more')]);
    expect(postgresFirstPacket(both)).toEqual({ kind: 'safe', length: 8 });
  });

  it('waits for more when the packet is not complete yet', () => {
    expect(postgresFirstPacket(Buffer.alloc(0)).kind).toBe('more');
    expect(postgresFirstPacket(startup.subarray(0, 7)).kind).toBe('more');
    expect(postgresFirstPacket(startup.subarray(0, startup.length - 1)).kind).toBe('more');
  });

  it('never sends ahead a CancelRequest (it cancels a running query)', () => {
    const cancel = packet(80877102, Buffer.alloc(8, 1));
    expect(postgresFirstPacket(cancel).kind).toBe('unsafe');
  });

  it('never sends ahead what is not a PostgreSQL startup packet', () => {
    expect(postgresFirstPacket(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')).kind).toBe(
      'unsafe',
    );
    // A TLS ClientHello, protocol 2, an SSLRequest with a wrong length, an oversized startup.
    expect(postgresFirstPacket(Buffer.from('160301020001000001fc0303', 'hex')).kind).toBe('unsafe');
    expect(postgresFirstPacket(packet(131072, params)).kind).toBe('unsafe');
    const longSsl = Buffer.concat([packet(80877103, Buffer.alloc(4)), Buffer.alloc(4)]);
    expect(postgresFirstPacket(longSsl).kind).toBe('unsafe');
    const huge = packet(196608, Buffer.alloc(10_001));
    expect(postgresFirstPacket(huge).kind).toBe('unsafe');
    expect(postgresFirstPacket(packet(196608)).kind).toBe('unsafe');
  });
});
