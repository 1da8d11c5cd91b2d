/**
 * First-run enrollment: generate a key here, send only a CSR with the single-use token, and keep
 * what the platform answers. Uses node:http(s) rather than fetch so `--insecure-platform-tls` can
 * disable verification for a self-signed platform without an extra dependency.
 */
import http from 'node:http';
import https from 'node:https';
import {
  ApiErrorSchema,
  ENROLL_PATH,
  EnrollResponseSchema,
  type EnrollRequest,
  type EnrollResponse,
} from '../protocol/enrollment.js';
import { createGatewayKeyAndCsr } from '../server/gateways/pki.js';
import type { GatewayState } from './state.js';
import { STATE_FORMAT } from './state.js';

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
}

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
  const { keyPem, csrPem } = await createGatewayKeyAndCsr(options.name);
  const request: EnrollRequest = {
    token: options.token,
    name: options.name,
    csr: csrPem,
    ...(options.pools?.length ? { pools: options.pools } : {}),
  };
  const { status, body } = await postJson(url, request, options);
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
  return stateFromResponse(parsed.data, keyPem, options);
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
  };
}

function postJson(
  url: URL,
  payload: unknown,
  options: EnrollOptions,
): Promise<{ status: number; body: string }> {
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
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
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
