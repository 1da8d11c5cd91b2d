/** The platform's REST API as the CLI uses it; every failure becomes one readable line. */
import { ClientError, PlatformRefusal } from './errors.js';

export interface ErrorBody {
  error?: { code?: string; message?: string; details?: unknown };
}

/** Where the token in use came from: a refused one is fixed where it came from. */
export type TokenSource = 'GATEPOOL_TOKEN' | 'saved';

/** The platform's own words for a refused request, or the status when it gave none. */
export function describeRefusal(
  status: number,
  body: unknown,
  platform: string,
  tokenFrom: TokenSource = 'saved',
): string {
  const message = (body as ErrorBody | undefined)?.error?.message;
  // Logging in again would not help: the variable still wins over the saved login.
  if (status === 401 && tokenFrom === 'GATEPOOL_TOKEN')
    return `the token in GATEPOOL_TOKEN was refused by ${platform} (invalid, expired or revoked): set a valid one, or unset GATEPOOL_TOKEN to use your saved login`;
  if (status === 401)
    return `not logged in to ${platform} (${message ?? 'token refused'}): run \`gatepool login --platform ${platform}\``;
  return message ?? `the platform answered HTTP ${status}`;
}

/** OpenSSL's and Node's codes for a server certificate that could not be verified. */
const CERTIFICATE_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_UNTRUSTED',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
]);

export function unreachable(platform: string, err: unknown): ClientError {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  const why = cause?.code ?? cause?.message ?? (err as Error).message;
  if (cause?.code && CERTIFICATE_CODES.has(cause.code))
    return new ClientError(
      `cannot verify the TLS certificate of ${platform} (${why}): if your own CA signed it, set NODE_EXTRA_CA_CERTS to that CA's PEM file`,
    );
  if (cause?.code === 'ERR_TLS_CERT_ALTNAME_INVALID')
    return new ClientError(
      `the TLS certificate of ${platform} is not issued for that host name: use the name it was issued for`,
    );
  // Something listens there but is no web server (a database port, SSH): undici sees the
  // connection closed without an answer, or an answer its HTTP parser rejects.
  if (cause?.code === 'UND_ERR_SOCKET' || cause?.code?.startsWith('HPE_'))
    return new ClientError(
      `${platform} did not answer HTTP (${cause.code === 'UND_ERR_SOCKET' ? 'the connection was closed without an answer' : cause.code}): ` +
        `is that the platform's address? Give its base URL, e.g. https://gatepool.example.com`,
    );
  return new ClientError(`cannot reach the platform at ${platform} (${why})`);
}

export interface ClientOptions {
  timeoutMs?: number;
  tokenFrom?: TokenSource;
}

export interface RequestOptions {
  body?: unknown;
  /** Whether a 2xx answer has what the caller reads from it (a web page at a wrong URL has not). */
  valid?: (value: unknown) => boolean;
  /** The route answers 204 with no body: that is success, not "no platform here". */
  noContent?: boolean;
}

/** A JSON object (not an array or null): what every API answer is. */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export class PlatformClient {
  private readonly timeoutMs: number;
  private readonly tokenFrom: TokenSource;

  constructor(
    readonly platform: string,
    private readonly token: string | undefined,
    opts: ClientOptions = {},
  ) {
    this.timeoutMs = opts.timeoutMs ?? 15_000;
    this.tokenFrom = opts.tokenFrom ?? 'saved';
  }

  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const { body } = opts;
    const headers: Record<string, string> = { 'user-agent': 'gatepool-cli' };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(this.platform + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      throw unreachable(this.platform, err);
    }
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (!res.ok)
      throw new PlatformRefusal(
        describeRefusal(res.status, parsed, this.platform, this.tokenFrom),
        res.status,
      );
    if (opts.noContent && res.status === 204) return undefined as T;
    // A web server that answers every path (e.g. the platform's UI under a wrong base path)
    // says 200 with a page: reading fields from it would fail far from the cause.
    if (!isObject(parsed) || (opts.valid && !opts.valid(parsed))) {
      const type = res.headers.get('content-type')?.split(';')[0]?.trim();
      const got = !text
        ? 'an empty answer'
        : parsed !== undefined
          ? `an unexpected JSON answer to ${method} ${path}`
          : (type ?? 'an answer without a content type');
      throw new ClientError(
        `${this.platform} does not answer like a gatepool platform (got ${got}): give the platform's base URL, e.g. https://gatepool.example.com`,
      );
    }
    return parsed as T;
  }
}

/** An access target as `GET /api/v1/access-targets` lists it. */
export interface AccessTarget {
  id: string;
  name: string;
  host: string;
  port: number;
  protocol: 'tcp' | 'postgres' | 'http' | 'kubernetes';
  description: string;
  gateway: { id: string; name: string } | null;
  gatewayPool: { id: string; name: string } | null;
  canConnect: boolean;
}

/** Enough of an access target to name it and connect to it. */
export function isAccessTarget(value: unknown): value is AccessTarget {
  return (
    isObject(value) &&
    typeof value.id === 'string' &&
    typeof value.name === 'string' &&
    typeof value.host === 'string' &&
    typeof value.port === 'number' &&
    typeof value.protocol === 'string'
  );
}

export function via(t: AccessTarget): string {
  if (t.gatewayPool) return `gateway pool "${t.gatewayPool.name}"`;
  if (t.gateway) return `gateway "${t.gateway.name}"`;
  return 'direct';
}
