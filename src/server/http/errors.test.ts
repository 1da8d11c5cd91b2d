import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import {
  ConflictError,
  DomainError,
  ForbiddenError,
  InvalidInputError,
  NotFoundError,
  permissionDenied,
  PlanUpgradeRequiredError,
  PolicyViolationError,
  RateLimitedError,
  UnauthenticatedError,
  UnavailableError,
  UnprocessableError,
} from '../errors.js';
import { installErrorHandling } from './error-handler.js';
import { AppError, conflict, notFound, statusOf, tooManyRequests } from './errors.js';

class Unmapped extends DomainError {}

describe('domain errors → HTTP', () => {
  it('maps each kind to its status', () => {
    const cases: Array<[DomainError, number]> = [
      [new InvalidInputError('x'), 400],
      [new UnauthenticatedError('x'), 401],
      [new ForbiddenError('x'), 403],
      [new PolicyViolationError('x'), 403],
      [new PlanUpgradeRequiredError('x'), 403],
      [new NotFoundError('Gateway'), 404],
      [new ConflictError('x'), 409],
      [new UnprocessableError('x'), 422],
      [new RateLimitedError('x', 3), 429],
      [new UnavailableError('x'), 503],
      [new AppError(418, 'teapot', 'x'), 418],
      [new Unmapped('weird', 'x'), 500],
    ];
    for (const [err, status] of cases) expect(statusOf(err), err.name).toBe(status);
    // The factories every feature already uses make domain errors.
    expect(notFound('Pool')).toBeInstanceOf(NotFoundError);
    expect(conflict('x')).toBeInstanceOf(ConflictError);
    expect(permissionDenied({ role: 'viewer' }, 'attach', 'Gateway').message).toMatch(
      /Gateway:attach/,
    );
  });

  it('answers with the uniform body, Retry-After for rate limits', async () => {
    const app = Fastify();
    installErrorHandling(app);
    app.get('/limited', async () => {
      throw tooManyRequests('slow down', 7);
    });
    app.get('/policy', async () => {
      throw new PolicyViolationError('pools only', { policy: 'requireGatewayPools' });
    });
    app.get('/gone', async () => {
      throw new NotFoundError('Gateway 1');
    });
    try {
      const limited = await app.inject('/limited');
      expect(limited.statusCode).toBe(429);
      expect(limited.headers['retry-after']).toBe('7');
      expect(limited.json()).toEqual({
        error: { code: 'rate_limited', message: 'slow down', details: { retryAfterSeconds: 7 } },
      });
      const policy = await app.inject('/policy');
      expect(policy.statusCode).toBe(403);
      expect(policy.json().error).toMatchObject({ code: 'policy_violation' });
      const gone = await app.inject('/gone');
      expect(gone.statusCode).toBe(404);
      expect(gone.json()).toEqual({
        error: { code: 'not_found', message: 'Gateway 1 not found.' },
      });
    } finally {
      await app.close();
    }
  });
});
