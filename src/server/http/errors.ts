/** An error the API reports as `{ error: { code, message, details? } }` with its status. */
export class AppError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

export const badRequest = (message: string, details?: unknown) =>
  new AppError(400, 'bad_request', message, details);
export const unauthorized = (message = 'Authentication required: send a bearer token or log in.') =>
  new AppError(401, 'unauthorized', message);
export const forbidden = (message: string, details?: unknown) =>
  new AppError(403, 'forbidden', message, details);
export const notFound = (what: string) => new AppError(404, 'not_found', `${what} not found.`);
export const conflict = (message: string, details?: unknown) =>
  new AppError(409, 'conflict', message, details);
export const unprocessable = (message: string, details?: unknown) =>
  new AppError(422, 'unprocessable', message, details);
export const tooManyRequests = (message: string, retryAfterSeconds: number) =>
  new AppError(429, 'rate_limited', message, { retryAfterSeconds });

/** PostgreSQL's unique_violation, as both drivers surface it (possibly wrapped by drizzle). */
export function isUniqueViolation(err: unknown): boolean {
  return pgCode(err) === '23505';
}
export function isForeignKeyViolation(err: unknown): boolean {
  return pgCode(err) === '23503';
}
/** Text PostgreSQL cannot store or compare (a NUL byte, an untranslatable character). */
export function isUnstorableText(err: unknown): boolean {
  const code = pgCode(err);
  return code === '22021' || code === '22P05';
}
function pgCode(err: unknown): string | undefined {
  for (let e = err, i = 0; e && typeof e === 'object' && i < 4; i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}
