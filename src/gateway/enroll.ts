/**
 * First-run enrollment: generate a key here, send only a CSR with the single-use token, and keep
 * what the platform answers. Uses node:http(s) rather than fetch so `--insecure-platform-tls` can
 * disable verification for a self-signed platform without an extra dependency.
 */
import http from 'node:http';
import https from 'node:https';
import { z } from 'zod';
import { sign } from 'node:crypto';
import {
  ApiErrorSchema,
  ENROLL_PATH,
  EnrollResponseSchema,
  type EnrollRequest,
  type EnrollResponse,
} from '../protocol/enrollment.js';
import {
  TUNNEL_LOOKUP_PATH,
  TunnelLookupResponseSchema,
  tunnelLookupMessage,
  type TunnelLookupRequest,
} from '../protocol/tunnel-lookup.js';
import { NO_SETTINGS, STATE_FORMAT, type GatewayState } from './state.js';

export class EnrollError extends Error {
  override name = 'EnrollError';
}

export interface EnrollOptions {
  platform: string;
  token: string;
  name: string;
  pools?: string[];
  insecureTls?: boolean;
  timeoutMs?: number;
  /**
   * How long to keep retrying while the platform answers 429 (many gateways enrolling from one
   * address, e.g. a fleet behind a NAT). Each wait follows the platform's Retry-After.
   */
  rateLimitPatienceMs?: number;
  /** Told before each wait, so the agent can say why it is not up yet. */
  onRateLimited?: (retryAfterSeconds: number) => void;
  /** What the platform warns about an enrollment that succeeded (e.g. a token's deleted pool). */
  onWarning?: (message: string) => void;
}

/** Older platforms send no warnings; the field is read apart from the shared contract. */
const EnrollWarningsSchema = z.object({ warnings: z.array(z.string()).optional() });

const DEFAULT_RATE_LIMIT_PATIENCE_MS = 10 * 60_000;

export async function enroll(options: EnrollOptions): Promise<GatewayState> {
  let url: URL;
  try {
    // Relative to the base so a platform served under a path prefix keeps it.
    const base = options.platform.endsWith('/') ? options.platform : `${options.platform}/`;
    url = new URL(ENROLL_PATH.replace(/^\//, ''), base);
  } catch {
    throw new EnrollError(
      `--platform must be a URL like https://gatepool.example.com, got "${options.platform}"`,
    );
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new EnrollError(`--platform must be an http(s) URL, got "${options.platform}"`);
  }
  // Loaded only here: the X.509 builder is heavy and an enrolled agent never needs it.
  const { createGatewayKeyAndCsr } = await import('../protocol/csr.js');
  const { keyPem, csrPem } = await createGatewayKeyAndCsr(options.name);
  const request: EnrollRequest = {
    token: options.token,
    name: options.name,
    csr: csrPem,
    ...(options.pools?.length ? { pools: options.pools } : {}),
  };
  const giveUpAt = Date.now() + (options.rateLimitPatienceMs ?? DEFAULT_RATE_LIMIT_PATIENCE_MS);
  let answer = await postJson(url, request, options);
  while (answer.status === 429) {
    // A missing or silly Retry-After still gets a sane pause; the platform's own is at most 60 s.
    const seconds = Math.min(120, Math.max(1, answer.retryAfterSeconds ?? 5));
    if (Date.now() + seconds * 1000 > giveUpAt) break;
    options.onRateLimited?.(seconds);
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
    answer = await postJson(url, request, options);
  }
  const { status, body } = answer;
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw new EnrollError(
      `enrollment failed: the platform answered ${status} with a non-JSON body`,
    );
  }
  if (status < 200 || status >= 300) {
    const apiError = ApiErrorSchema.safeParse(json);
    const message = apiError.success ? apiError.data.error.message : `HTTP ${status}`;
    throw new EnrollError(`enrollment failed: ${message}`);
  }
  const parsed = EnrollResponseSchema.safeParse(json);
  if (!parsed.success) {
    throw new EnrollError(
      'enrollment failed: unexpected answer from the platform (version mismatch?)',
    );
  }
  for (const warning of EnrollWarningsSchema.safeParse(json).data?.warnings ?? [])
    options.onWarning?.(warning);
  return stateFromResponse(parsed.data, keyPem, options);
}

export type TunnelLookup =
  | { kind: 'found'; tunnelAddress: string }
  /** The platform answered that it has no such gateway: only a new enrollment helps. */
  | { kind: 'unknown'; message: string }
  /** No answer to act on (unreachable, an older platform, …): keep the saved address. */
  | { kind: 'failed'; message: string };

/**
 * Asks the platform at `platform` where its tunnel is now, proving this gateway's identity with
 * a signature by its key (protocol/tunnel-lookup.ts). Never throws.
 */
export async function lookupTunnel(
  platform: string,
  state: GatewayState,
  options: { insecureTls?: boolean; timeoutMs?: number } = {},
): Promise<TunnelLookup> {
  let url: URL;
  try {
    const base = platform.endsWith('/') ? platform : `${platform}/`;
    url = new URL(TUNNEL_LOOKUP_PATH.replace(/^\//, ''), base);
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error('not http(s)');
  } catch {
    return { kind: 'failed', message: `--platform must be an http(s) URL, got "${platform}"` };
  }
  const timestamp = new Date().toISOString();
  const request: TunnelLookupRequest = {
    certificate: state.certificatePem,
    timestamp,
    signature: sign(
      'sha256',
      tunnelLookupMessage(state.orgId, state.gatewayId, timestamp),
      state.keyPem,
    ).toString('base64'),
  };
  let answer: { status: number; body: string };
  try {
    answer = await postJson(url, request, {
      platform,
      token: '',
      name: state.name,
      insecureTls: options.insecureTls,
      timeoutMs: options.timeoutMs ?? 15_000,
    });
  } catch (error) {
    return {
      kind: 'failed',
      message: (error as Error).message.replace(/^enrollment failed: /, ''),
    };
  }
  let json: unknown;
  try {
    json = JSON.parse(answer.body);
  } catch {
    return {
      kind: 'failed',
      message: `the platform answered ${answer.status} with a non-JSON body`,
    };
  }
  if (answer.status === 200) {
    const parsed = TunnelLookupResponseSchema.safeParse(json);
    return parsed.success
      ? { kind: 'found', tunnelAddress: parsed.data.tunnelAddress }
      : { kind: 'failed', message: 'unexpected answer from the platform (version mismatch?)' };
  }
  const apiError = ApiErrorSchema.safeParse(json);
  if (answer.status === 404 && apiError.success && apiError.data.error.code === 'gateway_unknown')
    return { kind: 'unknown', message: apiError.data.error.message };
  return {
    kind: 'failed',
    message: apiError.success
      ? `${apiError.data.error.message} (HTTP ${answer.status})`
      : `HTTP ${answer.status}`,
  };
}

function stateFromResponse(
  response: EnrollResponse,
  keyPem: string,
  options: EnrollOptions,
): GatewayState {
  return {
    format: STATE_FORMAT,
    gatewayId: response.gatewayId,
    orgId: response.orgId,
    name: options.name,
    platform: options.platform,
    tunnelAddress: response.tunnelAddress,
    keyPem,
    certificatePem: response.certificate,
    caCertificatePem: response.caCertificate,
    serverCaCertificatePem: response.serverCaCertificate,
    enrolledAt: new Date().toISOString(),
    settings: { ...NO_SETTINGS, pools: options.pools ?? [] },
  };
}

function postJson(
  url: URL,
  payload: unknown,
  options: EnrollOptions,
): Promise<{ status: number; body: string; retryAfterSeconds?: number }> {
  const data = Buffer.from(JSON.stringify(payload));
  const client = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = client.request(
      url,
      {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'content-length': data.length,
          accept: 'application/json',
        },
        timeout: options.timeoutMs ?? 30_000,
        ...(url.protocol === 'https:' && options.insecureTls ? { rejectUnauthorized: false } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const retryAfter = Number(res.headers['retry-after']);
          resolve({
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks).toString('utf8'),
            ...(Number.isFinite(retryAfter) ? { retryAfterSeconds: retryAfter } : {}),
          });
        });
        res.on('error', (error) => reject(new EnrollError(`enrollment failed: ${error.message}`)));
      },
    );
    req.on('timeout', () => req.destroy(new Error('the platform did not answer in time')));
    req.on('error', (error) =>
      reject(new EnrollError(`enrollment failed: cannot reach ${url.origin}: ${error.message}`)),
    );
    req.end(data);
  });
}
