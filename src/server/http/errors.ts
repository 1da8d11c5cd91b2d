import {
  ConflictError,
  DomainError,
  ForbiddenError,
  InvalidInputError,
  NotFoundError,
  PlanUpgradeRequiredError,
  PolicyViolationError,
  RateLimitedError,
  UnauthenticatedError,
  UnavailableError,
  UnprocessableError,
} from '../errors.js';

export * from '../errors.js';

/**
 * An error with an explicit HTTP status, for the few answers no domain error describes.
 * Prefer the domain errors of `src/server/errors.ts` (the factories below make them).
 */
export class AppError extends DomainError {
  constructor(
    readonly statusCode: number,
    code: string,
    message: string,
    details?: unknown,
  ) {
    super(code, message, details);
  }
}

/** The API's error body. */
export interface ErrorBody {
  error: { code: string; message: string; details?: unknown };
}

/** The body a domain error is answered with: the one place its shape is decided. */
export function errorBodyOf(err: DomainError): ErrorBody {
  return {
    error: {
      code: err.code,
      message: err.message,
      ...(err.details === undefined ? {} : { details: err.details }),
    },
  };
}

/** The body of a 503 while the database is away (with Retry-After). */
export const DATABASE_UNAVAILABLE: ErrorBody = {
  error: {
    code: 'database_unavailable',
    message: "The platform's database is not reachable right now; retry in a few seconds.",
  },
};

/** The body of a 503 when the database lacks gatepool's tables (see db/errors isSchemaMissing). */
export const DATABASE_SCHEMA_MISSING: ErrorBody = {
  error: {
    code: 'database_not_ready',
    message:
      "The platform's database has no gatepool tables (was it dropped and recreated, or another restored?). Restart the platform to set it up, or restore a backup.",
  },
};

/** The HTTP status of a domain error: the one place the API's statuses are decided. */
export function statusOf(err: DomainError): number {
  if (err instanceof AppError) return err.statusCode;
  if (err instanceof InvalidInputError) return 400;
  if (err instanceof UnauthenticatedError) return 401;
  if (
    err instanceof ForbiddenError ||
    err instanceof PolicyViolationError ||
    err instanceof PlanUpgradeRequiredError
  )
    return 403;
  if (err instanceof NotFoundError) return 404;
  if (err instanceof ConflictError) return 409;
  if (err instanceof UnprocessableError) return 422;
  if (err instanceof RateLimitedError) return 429;
  if (err instanceof UnavailableError) return 503;
  return 500;
}

export const badRequest = (message: string, details?: unknown) =>
  new InvalidInputError(message, details);
export const unauthorized = (message = 'Authentication required: send a bearer token or log in.') =>
  new UnauthenticatedError(message);
export const forbidden = (message: string, details?: unknown) =>
  new ForbiddenError(message, details);
export const notFound = (what: string) => new NotFoundError(what);
export const conflict = (message: string, details?: unknown) => new ConflictError(message, details);
export const unprocessable = (message: string, details?: unknown) =>
  new UnprocessableError(message, details);
export const tooManyRequests = (message: string, retryAfterSeconds: number) =>
  new RateLimitedError(message, retryAfterSeconds);

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
