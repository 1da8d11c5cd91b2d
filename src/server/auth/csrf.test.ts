import { describe, expect, it } from 'vitest';
import { assertCookieRequestSafe, type CsrfRequest } from './csrf.js';

const req = (over: Partial<CsrfRequest> & { headers?: CsrfRequest['headers'] }): CsrfRequest => ({
  method: 'POST',
  host: 'gatepool.internal:8080',
  ...over,
  headers: { 'x-gatepool-request': '1', ...over.headers },
});
const code = (r: CsrfRequest) => {
  try {
    assertCookieRequestSafe(r);
    return 'ok';
  } catch (err) {
    return (err as { code: string }).code;
  }
};

describe('cookie CSRF guard', () => {
  it('lets reads through and asks changes for the header', () => {
    expect(code(req({ method: 'GET', headers: { 'x-gatepool-request': undefined } }))).toBe('ok');
    for (const method of ['POST', 'PUT', 'PATCH', 'DELETE', 'delete']) {
      expect(code(req({ method, headers: { 'x-gatepool-request': undefined } }))).toBe(
        'csrf_required',
      );
      expect(code(req({ method }))).toBe('ok');
    }
    expect(code(req({ headers: { 'x-gatepool-request': 'true' } }))).toBe('csrf_required');
  });

  it('accepts an Origin of this host or of GATEPOOL_PUBLIC_URL, nothing else', () => {
    expect(code(req({ headers: { origin: 'http://gatepool.internal:8080' } }))).toBe('ok');
    expect(code(req({ headers: { origin: 'https://GATEPOOL.internal:8080' } }))).toBe('ok');
    const behindProxy = { host: '10.0.0.7:8080', publicUrl: 'https://gatepool.example.com' };
    expect(code(req({ ...behindProxy, headers: { origin: 'https://gatepool.example.com' } }))).toBe(
      'ok',
    );
    for (const origin of [
      'https://evil.example',
      'null',
      'http://gatepool.internal:8081',
      'http://gatepool.internal:8080.evil.example',
      'not a url',
    ]) {
      expect(code(req({ ...behindProxy, headers: { origin } })), origin).toBe('csrf_required');
      expect(code(req({ headers: { origin } })), origin).toBe('csrf_required');
    }
  });
});
