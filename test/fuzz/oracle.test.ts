/** The fuzz test's verdict on an answer (http.ts judge): what it must flag and what it must let pass. */
import { describe, expect, it } from 'vitest';
import { judge, type RawResponse } from './http.js';

const json = (status: number, body: unknown): RawResponse => ({
  status,
  headers: { 'content-type': 'application/json; charset=utf-8' },
  text: JSON.stringify(body),
});
const nothingSent = () => false;

describe('fuzz oracle', () => {
  it('flags a 500 and a 5xx without an error code of its own', () => {
    expect(judge(json(500, { error: { code: 'internal', message: 'x' } }), nothingSent)).toBe(
      'status 500',
    );
    expect(judge(json(503, { error: { code: 'internal', message: 'x' } }), nothingSent)).toBe(
      'status 503',
    );
    expect(judge({ status: 502, headers: {}, text: 'Bad Gateway' }, nothingSent)).toBe(
      'status 502',
    );
  });

  it('lets through a 503 that names the dependency that is down', () => {
    const res = json(503, { error: { code: 'gateway_unavailable', message: 'no healthy member' } });
    expect(judge(res, nothingSent)).toBeNull();
  });

  it('flags stack traces and source paths, raw or JSON-escaped, in any status', () => {
    const traces = [
      'TypeError: x\n    at Object.<anonymous> (/work/main/src/server/roles/routes.ts:19:30)',
      'Error: boom\\n    at handler (file:///app/dist/x.js:1:1)',
      'failed in routes.ts:42',
      'at node:internal/process/task_queues:95:5',
    ];
    for (const message of traces)
      expect(
        judge(json(400, { error: { code: 'bad_request', message } }), nothingSent),
        message,
      ).toMatch(/^stack trace or source path/);
  });

  it('does not mistake the client’s own text echoed back for a leak', () => {
    const res = json(400, { error: { code: 'bad_request', message: 'name "a.ts:1" is taken' } });
    expect(judge(res, (t) => 'name=a.ts:1'.includes(t))).toBeNull();
    expect(judge(res, nothingSent)).toMatch(/^stack trace/);
  });

  it('flags a body that is not the JSON its Content-Type claims', () => {
    const res = { status: 400, headers: { 'content-type': 'application/json' }, text: '{"a":' };
    expect(judge(res, nothingSent)).toBe('body is not the JSON its Content-Type claims');
    expect(
      judge(json(404, { error: { code: 'not_found', message: 'x' } }), nothingSent),
    ).toBeNull();
  });
});
