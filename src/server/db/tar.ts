import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';

/**
 * A minimal ustar writer and reader, no dependency for it: backup files (three regular files)
 * and the embedded database's dump (its data directory: files and directories, the layout
 * PGlite's own dump and load use).
 */

export interface TarEntry {
  /** At most 100 bytes (no ustar prefix is written). */
  name: string;
  /** A regular file's content; a directory has none. */
  data?: Buffer;
  directory?: boolean;
  /** Seconds since the epoch; now when not given. */
  mtime?: number;
}

const NAME_BYTES = 100;

export class TarNameTooLongError extends Error {}

/**
 * A tar as its chunks (headers, contents, padding), streamed to gzipChunks: a data
 * directory's tar is tens of MB, and copying it into one buffer is a stall of its own.
 */
export function tarChunks(entries: TarEntry[]): Buffer[] {
  const parts: Buffer[] = [];
  const now = Math.floor(Date.now() / 1000);
  for (const { name, data = Buffer.alloc(0), directory, mtime = now } of entries) {
    if (Buffer.byteLength(name) > NAME_BYTES)
      throw new TarNameTooLongError(`${name} is longer than a tar name (${NAME_BYTES} bytes)`);
    const size = directory ? 0 : data.length;
    const h = Buffer.alloc(512);
    h.write(name, 0, NAME_BYTES, 'utf8');
    h.write(directory ? '0000700\0' : '0000600\0', 100, 'ascii');
    h.write('0000000\0', 108, 'ascii');
    h.write('0000000\0', 116, 'ascii');
    h.write(`${size.toString(8).padStart(11, '0')}\0`, 124, 'ascii');
    h.write(`${Math.floor(mtime).toString(8).padStart(11, '0')}\0`, 136, 'ascii');
    h.write('        ', 148, 'ascii');
    h.write(directory ? '5' : '0', 156, 'ascii');
    h.write('ustar\u000000', 257, 'ascii');
    let sum = 0;
    for (const b of h) sum += b;
    h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
    parts.push(h);
    if (size) parts.push(data, Buffer.alloc((512 - (size % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return parts;
}

/** Gzips chunks on the thread pool: the event loop only hands them over. */
export async function gzipChunks(chunks: Buffer[], level?: number): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline(
    Readable.from(chunks),
    createGzip({ level }),
    async (gz: AsyncIterable<Buffer>) => {
      for await (const c of gz) out.push(c);
    },
  );
  return Buffer.concat(out);
}

/**
 * The regular files of a tar, by name; throws unless every header is intact and the
 * end-of-archive block is there.
 */
export function untar(buf: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (let off = 0; off + 512 <= buf.length;) {
    const h = buf.subarray(off, off + 512);
    if (h.every((b) => b === 0)) return out;
    if (!checksumOk(h)) throw new Error('not a tar archive (bad header checksum)');
    const name = h.subarray(0, 100).toString('utf8').replace(/\0.*$/s, '');
    const size = parseInt(h.subarray(124, 136).toString('ascii').replace(/\0.*$/s, '').trim(), 8);
    if (!Number.isFinite(size) || off + 512 + size > buf.length) throw new Error('truncated tar');
    if (h[156] === 0x30 || h[156] === 0) out.set(name, buf.subarray(off + 512, off + 512 + size));
    off += 512 + Math.ceil(size / 512) * 512;
  }
  throw new Error('truncated tar (no end-of-archive block)');
}

function checksumOk(h: Buffer): boolean {
  const stored = parseInt(h.subarray(148, 156).toString('ascii').replace(/\0.*$/s, '').trim(), 8);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
  return stored === sum;
}
