/** Which failures count as "the database is away" (503) — and which must not. */
import { DrizzleQueryError } from 'drizzle-orm/errors';
import { describe, expect, it } from 'vitest';
import { DatabaseUnavailableError, dbErrorMessage, isDatabaseUnavailable } from './errors.js';

const errno = (code: string) =>
  Object.assign(new Error(`connect ${code} 127.0.0.1:5432`), { code });
// The real class: its `name` is plain 'Error', so only instanceof tells it apart.
const drizzle = (cause: unknown) => new DrizzleQueryError('rollback', [], cause as Error);

describe('isDatabaseUnavailable', () => {
  it('recognises shutdowns, lost connections and refused connects from queries', () => {
    const pgShutdown = Object.assign(
      new Error('terminating connection due to administrator command'),
      {
        code: '57P01',
      },
    );
    expect(isDatabaseUnavailable(pgShutdown)).toBe(true);
    expect(isDatabaseUnavailable(drizzle(pgShutdown))).toBe(true);
    expect(isDatabaseUnavailable(drizzle(new Error('Connection terminated unexpectedly')))).toBe(
      true,
    );
    expect(isDatabaseUnavailable(drizzle(errno('ECONNREFUSED')))).toBe(true);
    expect(isDatabaseUnavailable(new DatabaseUnavailableError(errno('ECONNRESET')))).toBe(true);
    expect(isDatabaseUnavailable(Object.assign(new Error('x'), { code: '08006' }))).toBe(true);
    expect(
      isDatabaseUnavailable(drizzle(new AggregateError([errno('ECONNREFUSED')], 'all failed'))),
    ).toBe(true);
  });

  it('recognises a new connection refused by the server: dropped, closed to connections, full, login refused', () => {
    const pgError = (code: string, message: string) =>
      drizzle(Object.assign(new Error(message), { code }));
    expect(isDatabaseUnavailable(pgError('3D000', 'database "gp" does not exist'))).toBe(true);
    expect(
      isDatabaseUnavailable(
        pgError('55000', 'database "gp" is not currently accepting connections'),
      ),
    ).toBe(true);
    expect(isDatabaseUnavailable(pgError('53300', 'sorry, too many clients already'))).toBe(true);
    expect(
      isDatabaseUnavailable(pgError('28P01', 'password authentication failed for user "gp"')),
    ).toBe(true);
    // The same class for a query's own mistake is not an outage.
    expect(
      isDatabaseUnavailable(
        pgError('55000', 'currval of sequence "s" is not yet defined in this session'),
      ),
    ).toBe(false);
  });

  it('leaves other failures alone: SQL errors, and socket errors that are not the database', () => {
    expect(isDatabaseUnavailable(Object.assign(new Error('dup'), { code: '23505' }))).toBe(false);
    expect(isDatabaseUnavailable(drizzle(Object.assign(new Error('bad'), { code: '42P01' })))).toBe(
      false,
    );
    // A Kubernetes API or gateway target refusing is not a database outage.
    expect(isDatabaseUnavailable(errno('ECONNREFUSED'))).toBe(false);
    expect(isDatabaseUnavailable(new Error('boom'))).toBe(false);
    expect(isDatabaseUnavailable(undefined)).toBe(false);
  });
});

describe('dbErrorMessage', () => {
  it("gives the driver's words, never the failed query's parameters", () => {
    const failed = new DrizzleQueryError(
      'insert into "audit_logs" values ($1, $2)',
      ['alice@example.com', '203.0.113.7'],
      errno('ECONNREFUSED'),
    );
    expect(dbErrorMessage(failed)).toBe('connect ECONNREFUSED 127.0.0.1:5432');
    expect(dbErrorMessage(new DatabaseUnavailableError(failed))).toBe(
      'connect ECONNREFUSED 127.0.0.1:5432',
    );
    expect(dbErrorMessage(new Error('plain'))).toBe('plain');
    expect(dbErrorMessage('text')).toBe('text');
  });
});
