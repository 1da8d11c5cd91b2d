/**
 * Domain errors: what services raise when a rule refuses a request. They carry a stable `code`
 * (clients branch on it), a message written for the user, and optional details, but no HTTP
 * status: `http/error-handler.ts` maps each class to one, so services stay free of HTTP.
 */
export abstract class DomainError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** The input is malformed in a way schema validation could not see. */
export class InvalidInputError extends DomainError {
  constructor(message: string, details?: unknown, code = 'bad_request') {
    super(code, message, details);
  }
}

/** No valid credential, or a credential that does not prove what it claims. */
export class UnauthenticatedError extends DomainError {
  constructor(message: string, details?: unknown, code = 'unauthorized') {
    super(code, message, details);
  }
}

/** The caller is known but may not do this (a missing permission, an ownership rule). */
export class ForbiddenError extends DomainError {
  constructor(message: string, details?: unknown, code = 'forbidden') {
    super(code, message, details);
  }
}

/** An organization policy (e.g. `require_gateway_pools`) refuses the change. */
export class PolicyViolationError extends DomainError {
  constructor(message: string, details?: unknown) {
    super('policy_violation', message, details);
  }
}

/** The organization's plan lacks the feature. */
export class PlanUpgradeRequiredError extends DomainError {
  constructor(message: string, details?: unknown) {
    super('plan_upgrade_required', message, details);
  }
}

/** The thing does not exist, or belongs to another organization (never told apart). */
export class NotFoundError extends DomainError {
  constructor(what: string) {
    super('not_found', `${what} not found.`);
  }
}

/** The change contradicts the current state (a duplicate, something still in use). */
export class ConflictError extends DomainError {
  constructor(message: string, details?: unknown, code = 'conflict') {
    super(code, message, details);
  }
}

/** Well-formed input the platform cannot act on (e.g. a cluster that fails the save check). */
export class UnprocessableError extends DomainError {
  constructor(message: string, details?: unknown, code = 'unprocessable') {
    super(code, message, details);
  }
}

/** Too many attempts; the caller may retry after `retryAfterSeconds`. */
export class RateLimitedError extends DomainError {
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super('rate_limited', message, { retryAfterSeconds });
  }
}

/** A dependency the request needs (a gateway, a cluster, the database) is not reachable now. */
export class UnavailableError extends DomainError {
  constructor(message: string, details?: unknown, code = 'unavailable') {
    super(code, message, details);
  }
}

/** 403 naming the permission the caller's role lacks, e.g. `GatewayPool:attach`. */
export function permissionDenied(
  actor: { role: string },
  action: string,
  subject: string,
): ForbiddenError {
  return new ForbiddenError(
    `Permission denied: your role "${actor.role}" may not ${action} ${subject} (needs ${subject}:${action}).`,
    { action, subject },
  );
}
