/**
 * A raw HTTP sender for the fuzz test: node:http rather than fetch, so paths go out exactly as
 * written (no `..` folding), bodies can be any bytes under any Content-Type, and a response
 * whose body is not the JSON it claims is reported rather than thrown.
 */
import http from 'node:http';

export interface RawRequest {
  method: string;
  /** Path and query string, already percent-encoded where needed. */
  path: string;
  headers: Record<string, string>;
  body?: string | Buffer;
}

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });

export async function sendRaw(
  base: string,
  req: RawRequest,
  timeoutMs = 10_000,
): Promise<RawResponse> {
  try {
    return await sendOnce(base, req, timeoutMs);
  } catch (err) {
    // A kept-alive socket the server had already closed (after an answer that ends the
    // connection, such as a 413): the request never reached it, so send it once more.
    // On a connection of its own: the pool may hold more sockets closed the same way.
    if ((err as { reusedSocket?: boolean }).reusedSocket)
      return sendOnce(base, req, timeoutMs, false);
    throw err;
  }
}

function sendOnce(
  base: string,
  req: RawRequest,
  timeoutMs: number,
  pooled = true,
): Promise<RawResponse> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const r = http.request(
      {
        host: url.hostname,
        port: url.port,
        method: req.method,
        path: req.path,
        // Node frames a body on GET, HEAD or DELETE only when told its length; unframed,
        // the server would read it as the next request on the connection.
        headers:
          req.body === undefined
            ? req.headers
            : { ...req.headers, 'content-length': String(Buffer.byteLength(req.body)) },
        agent: pooled ? agent : false,
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', reject);
      },
    );
    r.on('timeout', () => r.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    r.on('error', (err: Error & { code?: string }) =>
      reject(
        Object.assign(err, {
          reusedSocket: r.reusedSocket && ['ECONNRESET', 'EPIPE'].includes(err.code ?? ''),
        }),
      ),
    );
    r.end(req.body);
  });
}

/** Text that gives away a stack trace or a source location. */
const LEAKS: RegExp[] = [/\bat \//, /\.ts:\d*/, /\bnode:[a-z_]+/, /\n\s+at /, /\\n\s+at /];

/**
 * What is wrong with an answer to hostile input, or null when it is fine. `wasSent` tells
 * text the fuzzer itself sent (now or earlier, since stored values come back in lists): the
 * API echoing it is not a leak.
 */
export function judge(res: RawResponse, wasSent: (text: string) => boolean): string | null {
  if (res.status >= 500 && !isUpstreamUnavailable(res)) return `status ${res.status}`;
  for (const re of LEAKS) {
    const hit = new RegExp(re.source, 'g');
    for (const m of res.text.matchAll(hit))
      if (!wasSent(m[0])) return `stack trace or source path in the body (${m[0].trim()})`;
  }
  const type = String(res.headers['content-type'] ?? '');
  if (type.includes('json') && res.text) {
    try {
      JSON.parse(res.text);
    } catch {
      return 'body is not the JSON its Content-Type claims';
    }
  }
  return null;
}

/**
 * 502/503/504 with an error code of its own is the platform saying a dependency it needs for
 * this request (a gateway, a cluster) is unavailable: a deliberate answer, not a crash. A 500,
 * or a 5xx without a specific code, is always a failure.
 */
function isUpstreamUnavailable(res: RawResponse): boolean {
  if (![502, 503, 504].includes(res.status)) return false;
  try {
    const code = (JSON.parse(res.text) as { error?: { code?: unknown } }).error?.code;
    return typeof code === 'string' && code !== 'internal';
  } catch {
    return false;
  }
}

/**
 * A request Node cannot parse (e.g. headers over 16 KiB) gets Fastify's error answer, with a
 * body, before the server knows the method; to a HEAD request that body reads as garbage
 * after the head. It is an answer all the same, not a dropped connection.
 */
export function isErrorBodyAfterHead(method: string, err: Error & { code?: string }): boolean {
  return method === 'HEAD' && err.code === 'HPE_INVALID_CONSTANT';
}

export function closeAgent(): void {
  agent.destroy();
}
