/**
 * The Kubernetes TokenReview call (`POST /apis/authentication.k8s.io/v1/tokenreviews`) over
 * HTTPS, either on a stream the caller provides (a tunnel stream through a gateway: TLS runs
 * from the platform to the API server, so the gateway only relays ciphertext) or on a direct
 * TCP connection. The API server's certificate is verified against the configured CA bundle
 * (or the system CAs when none is given). Every outcome is a typed result, never a throw.
 */
import http from 'node:http';
import { isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';

export const TOKEN_REVIEW_PATH = '/apis/authentication.k8s.io/v1/tokenreviews';
const DEFAULT_TIMEOUT_MS = 10_000;
/** Parsed CA bundles are reused: building a secure context per login costs measurable CPU. */
const CONTEXT_CACHE_SIZE = 64;
const contexts = new Map<string, tls.SecureContext>();

function secureContextFor(ca: string | undefined): tls.SecureContext | undefined {
  if (!ca) return undefined;
  let context = contexts.get(ca);
  if (context) {
    contexts.delete(ca);
  } else {
    context = tls.createSecureContext({ ca });
    if (contexts.size >= CONTEXT_CACHE_SIZE)
      contexts.delete(contexts.keys().next().value as string);
  }
  contexts.set(ca, context);
  return context;
}
/** A TokenReview answer is a few KB; anything much larger is not one. */
const MAX_RESPONSE_BYTES = 1024 * 1024;

export interface ApiServer {
  /** Host as the gateway (or this process) should dial it: a name or an IP literal (no brackets). */
  host: string;
  port: number;
  /** Path prefix before /apis (an API server behind a path-routing proxy); usually ''. */
  basePath: string;
}

/** Parses a kubernetesHost URL (`https://host[:port][/prefix]`); null when it is not one. */
export function parseKubernetesHost(url: string): ApiServer | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return null;
  }
  if (u.protocol !== 'https:' || !u.hostname || u.username || u.password || u.search || u.hash)
    return null;
  const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  return { host, port: u.port ? Number(u.port) : 443, basePath: u.pathname.replace(/\/+$/, '') };
}

export interface TokenReviewParams {
  server: ApiServer;
  /** PEM bundle to verify the API server against; empty/undefined = the system CAs. */
  caCert?: string | null;
  /** Bearer token the platform authenticates with (the token-reviewer JWT), if any. */
  bearerToken?: string | null;
  /** The token under review. */
  token: string;
  /** spec.audiences: the audiences the token must be valid for (empty = the API server's). */
  audiences?: string[];
  timeoutMs?: number;
  /** A tunnel stream already connected to server.host:port; omitted = dial directly. */
  stream?: Duplex;
  /**
   * Without a stream: the address to dial instead of resolving server.host again (one already
   * checked against the direct-target rules); the certificate is still verified for server.host.
   */
  dialAddress?: string;
}

export interface ReviewedUser {
  username: string;
  uid: string;
  groups: string[];
  extra: Record<string, string[]>;
}

export type TokenReviewFailure =
  /** The cluster answered: the token is not valid (expired, bad signature, wrong audience, deleted account…). */
  | 'not_authenticated'
  /** 401 from the API server: the reviewer credential (or the login JWT standing in for it) was rejected. */
  | 'reviewer_unauthorized'
  /** 403: the reviewer is authenticated but may not create tokenreviews (needs system:auth-delegator). */
  | 'reviewer_forbidden'
  /** The API server's certificate did not verify against the CA (or the hostname did not match). */
  | 'tls'
  /** Could not connect, or the connection dropped before an answer. */
  | 'unreachable'
  | 'timeout'
  /** An answer that is not a TokenReview (wrong status, not JSON, wrong kind). */
  | 'bad_response';

export type TokenReviewResult =
  | { ok: true; user: ReviewedUser; audiences: string[] }
  | { ok: false; reason: TokenReviewFailure; message: string; httpStatus?: number };

/** Node/OpenSSL error codes that mean "the peer's certificate is not acceptable". */
const TLS_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'HOSTNAME_MISMATCH',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'ERR_SSL_WRONG_VERSION_NUMBER',
]);

function classifyError(
  err: NodeJS.ErrnoException,
  secured: boolean,
): { reason: TokenReviewFailure; message: string } {
  const code = err.code ?? '';
  if (code === 'EPROTO') {
    // OpenSSL's message is a dump of routine names and source lines; its reason alone is useful.
    const ssl = /SSL routines:(?:[^:]*:)?([^:]+):/.exec(err.message)?.[1]?.trim();
    return {
      reason: 'tls',
      message: `the TLS handshake with the API server failed${ssl ? ` (${ssl})` : ''}: is something other than an HTTPS server (plain HTTP?) listening at kubernetesHost?`,
    };
  }
  if (TLS_CODES.has(code) || (!secured && /^ERR_SSL_|^ERR_TLS_|^ERR_OSSL_/.test(code))) {
    return {
      reason: 'tls',
      message: `TLS verification of the API server failed: ${err.message}${code ? ` (${code})` : ''}`,
    };
  }
  return {
    reason: 'unreachable',
    message: secured
      ? `the connection to the API server failed before it answered: ${err.message}`
      : `could not connect to the API server: ${err.message}${code ? ` (${code})` : ''}`,
  };
}

/** Kubernetes answers errors with a `Status` object; its message is the useful part. */
function statusMessage(body: string): string | undefined {
  try {
    const parsed = JSON.parse(body) as { kind?: unknown; message?: unknown };
    if (parsed.kind === 'Status' && typeof parsed.message === 'string')
      return parsed.message.slice(0, 500);
  } catch {
    // not JSON
  }
  return undefined;
}

const isStringArray = (v: unknown): v is string[] =>
  Array.isArray(v) && v.every((x) => typeof x === 'string');

/** Interprets a 200/201 body as a TokenReview (exported for tests). */
export function interpretTokenReview(body: string): TokenReviewResult {
  let review: unknown;
  try {
    review = JSON.parse(body);
  } catch {
    return {
      ok: false,
      reason: 'bad_response',
      message: 'the API server answered with something that is not JSON',
    };
  }
  const r = review as { kind?: unknown; apiVersion?: unknown; status?: unknown };
  if (
    r.kind !== 'TokenReview' ||
    typeof r.apiVersion !== 'string' ||
    !r.apiVersion.startsWith('authentication.k8s.io/')
  ) {
    return {
      ok: false,
      reason: 'bad_response',
      message: 'the API server answered with something that is not a TokenReview',
    };
  }
  const status = (r.status ?? {}) as {
    authenticated?: unknown;
    user?: unknown;
    audiences?: unknown;
    error?: unknown;
  };
  if (status.authenticated !== true) {
    const why =
      typeof status.error === 'string' && status.error
        ? status.error.slice(0, 500)
        : 'the token was not authenticated';
    return { ok: false, reason: 'not_authenticated', message: why };
  }
  const user = (status.user ?? {}) as {
    username?: unknown;
    uid?: unknown;
    groups?: unknown;
    extra?: unknown;
  };
  if (typeof user.username !== 'string' || !user.username) {
    return {
      ok: false,
      reason: 'bad_response',
      message: 'the TokenReview is authenticated but names no user',
    };
  }
  const extra: Record<string, string[]> = {};
  if (user.extra && typeof user.extra === 'object') {
    for (const [k, v] of Object.entries(user.extra as Record<string, unknown>))
      if (isStringArray(v)) extra[k] = v;
  }
  return {
    ok: true,
    user: {
      username: user.username,
      uid: typeof user.uid === 'string' ? user.uid : '',
      groups: isStringArray(user.groups) ? user.groups : [],
      extra,
    },
    audiences: isStringArray(status.audiences) ? status.audiences : [],
  };
}

/**
 * Performs one TokenReview. With `stream`, TLS runs over that stream (ending it when done);
 * without, a direct TCP connection is made. Bounded by `timeoutMs` from start to answer.
 */
export function tokenReview(params: TokenReviewParams): Promise<TokenReviewResult> {
  const { server } = params;
  const timeoutMs = params.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const body = JSON.stringify({
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'TokenReview',
    spec: {
      token: params.token,
      ...(params.audiences?.length ? { audiences: params.audiences } : {}),
    },
  });
  const ca = params.caCert?.trim() ? params.caCert : undefined;
  // A credential an HTTP header cannot carry (CR/LF, NUL, beyond Latin-1) would make the request
  // throw. The API refuses such JWTs, but a reviewer JWT saved unverified may predate that.
  if (params.bearerToken && !/^[\x21-\x7e]+$/.test(params.bearerToken)) {
    params.stream?.destroy();
    return Promise.resolve({
      ok: false,
      reason: 'reviewer_unauthorized',
      message:
        'the bearer credential is not a valid token (it contains characters an HTTP header cannot carry)',
    });
  }

  return new Promise<TokenReviewResult>((resolve) => {
    let settled = false;
    let secured = false;
    let socket: tls.TLSSocket | undefined;
    const finish = (result: TokenReviewResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      // Normal path: close_notify + end, so the tunnel stream closes with END_STREAM, not a reset
      // (DESIGN §2). Anything still open a moment later is torn down.
      if (socket && !socket.destroyed) {
        if (result.ok || result.reason === 'not_authenticated') {
          socket.end();
          setTimeout(() => socket?.destroy(), 2_000).unref();
        } else socket.destroy();
      }
      if (!socket) params.stream?.destroy();
      resolve(result);
    };
    const timer = setTimeout(
      () =>
        finish({
          ok: false,
          reason: 'timeout',
          message: `the API server did not answer within ${timeoutMs} ms`,
        }),
      timeoutMs,
    );

    try {
      socket = tls.connect({
        ...(params.stream ? { socket: params.stream } : {}),
        host: params.dialAddress ?? server.host,
        port: server.port,
        // Verified against the configured CA bundle only (or the system CAs when none).
        ...(ca ? { secureContext: secureContextFor(ca) } : {}),
        // SNI takes names only; an IP literal is verified against the certificate's IP SANs.
        ...(isIP(server.host) ? {} : { servername: server.host }),
        ALPNProtocols: ['http/1.1'],
        rejectUnauthorized: true,
      });
    } catch (err) {
      finish({ ok: false, ...classifyError(err as NodeJS.ErrnoException, false) });
      return;
    }
    const tlsSocket = socket;
    tlsSocket.once('secureConnect', () => (secured = true));
    // Errors also reach the request; this listener only keeps a late one from going unhandled.
    tlsSocket.on('error', () => undefined);

    const hostHeader = isIP(server.host) === 6 ? `[${server.host}]` : server.host;
    const req = http.request({
      createConnection: () => tlsSocket,
      method: 'POST',
      path: `${server.basePath}${TOKEN_REVIEW_PATH}`,
      headers: {
        host: server.port === 443 ? hostHeader : `${hostHeader}:${server.port}`,
        'content-type': 'application/json',
        accept: 'application/json',
        'content-length': Buffer.byteLength(body),
        'user-agent': 'gatepool-kubernetes-auth',
        connection: 'close',
        ...(params.bearerToken ? { authorization: `Bearer ${params.bearerToken}` } : {}),
      },
    });
    req.on('error', (err: NodeJS.ErrnoException) =>
      finish({ ok: false, ...classifyError(err, secured) }),
    );
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_RESPONSE_BYTES) {
          finish({
            ok: false,
            reason: 'bad_response',
            message: 'the API server answer is too large to be a TokenReview',
            httpStatus: res.statusCode,
          });
          return;
        }
        chunks.push(chunk);
      });
      res.on('error', (err: NodeJS.ErrnoException) =>
        finish({ ok: false, ...classifyError(err, true) }),
      );
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        const status = res.statusCode ?? 0;
        const detail = statusMessage(text);
        if (status === 200 || status === 201) {
          const result = interpretTokenReview(text);
          return finish(
            result.ok || result.reason !== 'bad_response'
              ? result
              : { ...result, httpStatus: status },
          );
        }
        if (status === 401) {
          return finish({
            ok: false,
            reason: 'reviewer_unauthorized',
            httpStatus: status,
            message: `the API server rejected the reviewer credentials (401${detail ? `: ${detail}` : ''})`,
          });
        }
        if (status === 403) {
          return finish({
            ok: false,
            reason: 'reviewer_forbidden',
            httpStatus: status,
            message: `the reviewer may not create tokenreviews (403${detail ? `: ${detail}` : ''}); bind it to the system:auth-delegator ClusterRole`,
          });
        }
        finish({
          ok: false,
          reason: 'bad_response',
          httpStatus: status,
          message: `the API server answered ${status}${detail ? `: ${detail}` : ''} instead of a TokenReview`,
        });
      });
    });
    req.end(body);
  });
}
