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
    throw new ApiError(
      0,
      'network',
      `The platform could not be reached (${(err as Error).message}). Check that it is running.`,
    );
  }
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
