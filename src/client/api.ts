/** The platform's REST API as the CLI uses it; every failure becomes one readable line. */
import { ClientError, PlatformRefusal } from './errors.js';

export interface ErrorBody {
  error?: { code?: string; message?: string; details?: unknown };
}

/** The platform's own words for a refused request, or the status when it gave none. */
export function describeRefusal(status: number, body: unknown, platform: string): string {
  const message = (body as ErrorBody | undefined)?.error?.message;
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
  return new ClientError(`cannot reach the platform at ${platform} (${why})`);
}

export class PlatformClient {
  constructor(
    readonly platform: string,
    private readonly token: string | undefined,
    private readonly timeoutMs = 15_000,
  ) {}

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
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
      throw new PlatformRefusal(describeRefusal(res.status, parsed, this.platform), res.status);
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

export function via(t: AccessTarget): string {
  if (t.gatewayPool) return `gateway pool "${t.gatewayPool.name}"`;
  if (t.gateway) return `gateway "${t.gateway.name}"`;
  return 'direct';
}
