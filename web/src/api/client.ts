import createClient, { type Middleware } from 'openapi-fetch';
import type { paths } from './schema';

/** An error the API answered, in its own words (`{ error: { code, message, details } }`). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

// The server refuses cookie-authenticated changes without this header (CSRF guard): a form
// on another site cannot set it.
const csrf: Middleware = {
  onRequest({ request }) {
    if (MUTATING.has(request.method)) request.headers.set('x-gatepool-request', '1');
    return request;
  },
};

// Absolute, so Request() accepts it outside a browser page too (component tests).
export const api = createClient<paths>({
  baseUrl: globalThis.location?.origin ?? '',
  credentials: 'same-origin',
  // Looked up per call, not captured at load, so whatever fetch the page has is used.
  fetch: (request) => globalThis.fetch(request),
});
api.use(csrf);

/**
 * Whether the platform answered the last call. A network failure or a 502/503/504 (the
 * platform or its database restarting) says it is away; any other answer says it is back.
 */
let reachable = true;
const reachListeners = new Set<() => void>();
function setReachable(v: boolean) {
  if (reachable === v) return;
  reachable = v;
  for (const l of reachListeners) l();
}
export const platformReachability = {
  get: () => reachable,
  subscribe(l: () => void): () => void {
    reachListeners.add(l);
    return () => reachListeners.delete(l);
  },
  /** What another way of asking the platform found (e.g. loading a page's code). */
  report: (v: boolean) => setReachable(v),
  /** For tests: start from a known state. */
  reset: () => setReachable(true),
};

/** An error that goes away by itself once the platform is back (worth retrying). */
export const isUnreachable = (err: unknown) =>
  err instanceof ApiError && (err.status === 0 || (err.status >= 502 && err.status <= 504));

interface Answer {
  data?: unknown;
  error?: unknown;
  response: Response;
}

/** The answer's body as `T`, or an ApiError carrying the server's message. */
export async function unwrap<T>(call: Promise<Answer>): Promise<T> {
  let answer: Answer;
  try {
    answer = await call;
  } catch (err) {
    setReachable(false);
    throw new ApiError(
      0,
      'network',
      `The platform could not be reached (${(err as Error).message}). Check that it is running.`,
    );
  }
  setReachable(!(answer.response.status >= 502 && answer.response.status <= 504));
  if (answer.response.ok) return answer.data as T;
  const body = answer.error as { error?: { code?: string; message?: string; details?: unknown } };
  const e = body?.error;
  throw new ApiError(
    answer.response.status,
    e?.code ?? 'http_error',
    e?.message ?? `The platform answered ${answer.response.status} ${answer.response.statusText}.`,
    e?.details,
  );
}

export const isPlanUpgrade = (err: unknown) =>
  err instanceof ApiError && err.code === 'plan_upgrade_required';
