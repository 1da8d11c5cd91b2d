import { describe, expect, it } from 'vitest';
import { DatabaseUnavailableError } from '../db/errors.js';
import { NotFoundError, UnavailableError } from '../http/errors.js';
import { refusalOf } from './upgrade.js';

describe('refusalOf: a refused client stream is answered as the API answers the same error', () => {
  it('domain errors keep their status, code, message and details', () => {
    expect(refusalOf(new NotFoundError('Access target "pg"'))).toEqual({
      status: 404,
      body: { error: { code: 'not_found', message: 'Access target "pg" not found.' } },
    });
    const down = refusalOf(
      new UnavailableError('no member', { attempts: [] }, 'gateway_unavailable'),
    );
    expect(down.status).toBe(503);
    expect(down.body.error).toEqual({
      code: 'gateway_unavailable',
      message: 'no member',
      details: { attempts: [] },
    });
  });

  it('a database outage is a 503 to retry, not an internal error', () => {
    const wrapped = new Error('query failed', { cause: new DatabaseUnavailableError() });
    expect(refusalOf(wrapped)).toEqual({
      status: 503,
      body: { error: { code: 'database_unavailable', message: expect.stringMatching(/retry/) } },
    });
  });

  it('anything else is an internal error that says where to look, without its own words', () => {
    const res = refusalOf(new Error('secret internals'));
    expect(res.status).toBe(500);
    expect(res.body.error.code).toBe('internal_error');
    expect(JSON.stringify(res.body)).not.toMatch(/secret internals/);
  });
});
