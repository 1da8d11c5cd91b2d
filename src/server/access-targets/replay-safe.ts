/**
 * Which first bytes of a client connection may travel with the tunnel's CONNECT, ahead of the
 * gateway's 200 (DESIGN §5 keeps "nothing reached the target" for retries).
 *
 * Sent ahead, the bytes reach the target as soon as the gateway has dialled it, which saves a
 * platform ↔ gateway round trip on every connection's set-up. The price: when a member dials the
 * target, writes these bytes and dies before its 200 arrives, the open is retried on another
 * member and the target sees the bytes twice, on two TCP connections, the first already gone.
 * That is harmless only for bytes that do nothing on a connection that then closes, and a
 * relay cannot tell that of arbitrary bytes (an HTTP request would run twice). So only a
 * PostgreSQL client's first packet qualifies, and only these kinds of it:
 *  - StartupMessage (protocol 3.x): asks for a session; the server forks a backend, which
 *    exits when the connection is gone, before any statement runs;
 *  - SSLRequest, GSSENCRequest: ask which encryption follows.
 * A CancelRequest (it cancels a running query) and anything else are never sent ahead.
 * Each of these is followed by the server's answer before the client sends more, so the first
 * packet is all a client has to send before the target speaks.
 */

/** Bytes a PostgreSQL server accepts for a startup packet (MAX_STARTUP_PACKET_LENGTH). */
const MAX_STARTUP_PACKET = 10_000;
const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;
/** Major protocol version 3 (the minor is negotiated by the server). */
const PROTOCOL_3 = 3;

export type FirstPacket =
  /** The first `length` bytes are a complete packet that may be sent ahead. */
  | { kind: 'safe'; length: number }
  /** Not enough bytes yet to tell. */
  | { kind: 'more' }
  /** Must wait for the gateway's 200 like any other bytes. */
  | { kind: 'unsafe' };

/** Classifies the first bytes a client sent to a `postgres` target. */
export function postgresFirstPacket(head: Buffer): FirstPacket {
  if (head.length < 8) return { kind: 'more' };
  const length = head.readUInt32BE(0);
  const code = head.readUInt32BE(4);
  const fixed = code === SSL_REQUEST || code === GSSENC_REQUEST;
  const startup = code >>> 16 === PROTOCOL_3;
  if (fixed ? length !== 8 : !startup || length <= 8 || length > MAX_STARTUP_PACKET)
    return { kind: 'unsafe' };
  return head.length < length ? { kind: 'more' } : { kind: 'safe', length };
}
