import { AppError } from '../http/errors.js';

/** The header the web UI sends on every change; a cross-site form or image cannot set it. */
export const CSRF_HEADER = 'x-gatepool-request';

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export interface CsrfRequest {
  method: string;
  /** The host the client addressed (proxy-aware), e.g. `gatepool.example.com:8080`. */
  host: string;
  /** GATEPOOL_PUBLIC_URL: the address users open, when a proxy in front rewrites Host. */
  publicUrl?: string;
  headers: Record<string, string | string[] | undefined>;
}

const one = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);

/**
 * A change authenticated by the session cookie must prove it comes from our own pages: the
 * browser attaches the cookie to any request to us, including ones another site triggers.
 * Bearer clients are exempt: another site cannot make a browser send their header.
 */
export function assertCookieRequestSafe(req: CsrfRequest): void {
  if (!MUTATING.has(req.method.toUpperCase())) return;
  if (one(req.headers[CSRF_HEADER]) !== '1') {
    throw new AppError(
      403,
      'csrf_required',
      `Changes made with the session cookie must send the header "${CSRF_HEADER}: 1" (the web UI does); scripts should use "Authorization: Bearer <token>" instead.`,
    );
  }
  const origin = one(req.headers.origin);
  if (origin === undefined) return;
  const from = originHost(origin);
  const ours = [req.host.toLowerCase(), req.publicUrl && originHost(req.publicUrl)];
  if (from === null || !ours.includes(from)) {
    throw new AppError(
      403,
      'csrf_required',
      `Origin ${origin} does not match this platform (${req.host}): cross-site changes are refused.`,
    );
  }
}

function originHost(origin: string): string | null {
  try {
    return new URL(origin).host.toLowerCase();
  } catch {
    return null;
  }
}
