/**
 * Requests for the fuzz tests, generated per operation of the OpenAPI document: path
 * parameters (real IDs of the right kind, other orgs' IDs, traversal, bad escapes), query
 * strings (schema-driven, repeated and unknown keys), bodies (schema-driven, not an object,
 * invalid JSON, too deep, too large, wrong Content-Type) and headers (broken credentials,
 * forged proxy headers), for an actor.
 */
import fc from 'fast-check';
import type { Operation, Parameter } from './document.js';
import {
  deepNesting,
  fromSchema,
  hostileString,
  hostileValue,
  kindOf,
  PROTOTYPE_KEYS,
  type IdPool,
  type Mode,
} from './hostile.js';
import type { World } from './world.js';

/**
 * Routes that hold the connection open on purpose (event streams, WebSocket upgrades) would
 * only ever time out here; their own tests cover them.
 */
export const HOLDS_OPEN = /\/(events|stream|ws|watch)(\/|$)/;

/** `admin-cookie`: the admin's session as the browser sends it, with or without the CSRF header. */
export type Actor = 'admin' | 'admin-cookie' | 'viewer' | 'anonymous';

export interface Case {
  actor: Actor;
  /** Another method than the operation's, on its path. */
  method?: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
  /** Sent this many times at once: races between check and write (unique keys, last admin). */
  copies: number;
}

const METHOD_ORDER = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'];
/**
 * Reads first and deletions last, so deletions do not starve the rest of real IDs; among
 * deletions the deepest paths first (an identity's token before the identity itself).
 */
export function runOrder(ops: Operation[]): Operation[] {
  const depth = (o: Operation) => o.path.split('/').length;
  const rank = (o: Operation) =>
    (o.path.endsWith('/logout') ? 1000 : 0) +
    METHOD_ORDER.indexOf(o.method) * 100 -
    (o.method === 'DELETE' ? depth(o) : 0);
  return [...ops].sort((a, b) => rank(a) - rank(b));
}

/** Percent-encodes the UTF-8 of a value; lone surrogates (which encodeURIComponent rejects) become U+FFFD. */
export function enc(v: unknown): string {
  const text = typeof v === 'string' ? v : v === undefined ? '' : JSON.stringify(v);
  let out = '';
  for (const b of Buffer.from(text, 'utf8'))
    out += /[A-Za-z0-9\-_.~]/.test(String.fromCharCode(b))
      ? String.fromCharCode(b)
      : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  return out;
}

/** Path segments that are not a percent-encoded value: traversal, bad escapes, empty. */
const RAW_SEGMENTS = [
  '..',
  '.',
  '%2e%2e',
  '..%2f..%2f',
  '%00',
  '%ZZ',
  '%',
  '',
  '%u0041',
  '%C0%AE',
  '%FF%FE',
  '%ED%A0%80',
];

function pathParamValue(
  name: string,
  segmentBefore: string,
  ids: IdPool,
  mode: Mode,
): fc.Arbitrary<string> {
  const real = ids[kindOf(name, segmentBefore)] ?? [];
  const all = Object.values(ids).flat();
  const arbs: fc.WeightedArbitrary<string>[] = [{ arbitrary: fc.uuid().map(String), weight: 1 }];
  if (mode === 'hostile')
    arbs.push(
      { arbitrary: hostileValue.map(enc), weight: 2 },
      { arbitrary: fc.constantFrom(...RAW_SEGMENTS), weight: 1 },
      { arbitrary: fc.constantFrom(...PROTOTYPE_KEYS), weight: 1 },
      { arbitrary: fc.constantFrom(...all).map(enc), weight: 1 },
    );
  if (real.length) arbs.push({ arbitrary: fc.constantFrom(...real).map(enc), weight: 6 });
  return fc.oneof(...arbs);
}

function pathArb(op: Operation, world: World, mode: Mode = 'hostile'): fc.Arbitrary<string> {
  const parts = op.path.split('/');
  const names = parts.flatMap((part) => /^\{(.+)\}$/.exec(part)?.[1] ?? []);
  const fill = (values: string[]) => {
    let next = 0;
    return parts.map((part) => (part.startsWith('{') ? (values[next++] ?? '') : part)).join('/');
  };
  const params = parts.flatMap((part, i) => {
    const m = /^\{(.+)\}$/.exec(part);
    return m ? [pathParamValue(m[1] ?? '', parts[i - 1] ?? '', world.ids, mode)] : [];
  });
  const independent = fc.tuple(...params).map(fill);
  // IDs that belong together (an identity and one of its tokens, a pool and a member): drawn
  // one by one they would almost never match, and the deepest paths would never run.
  const related = world.related[names.join(',')];
  if (!related?.length) return independent;
  return fc.oneof(
    { arbitrary: independent, weight: 2 },
    { arbitrary: fc.constantFrom(...related).map((ids) => fill(ids.map(enc))), weight: 1 },
  );
}

function queryArb(op: Operation, ids: IdPool): fc.Arbitrary<string> {
  return fc.oneof(queryPairs(op, ids, 'valid'), queryPairs(op, ids, 'hostile'));
}

function queryPairs(op: Operation, ids: IdPool, mode: Mode): fc.Arbitrary<string> {
  const value = (p: Parameter) => fromSchema(p.schema, ids, p.name, mode);
  const pairs = op.queryParams.map((p) =>
    fc.oneof(
      { arbitrary: fc.constant<string[]>([]), weight: 2 },
      { arbitrary: value(p).map((v) => [`${p.name}=${enc(v)}`]), weight: 3 },
      // Repeated keys arrive as an array.
      {
        arbitrary: fc
          .tuple(value(p), value(p))
          .map(([a, b]) => [`${p.name}=${enc(a)}`, `${p.name}=${enc(b)}`]),
        weight: mode === 'valid' ? 0 : 1,
      },
      {
        arbitrary: fc.constantFrom([`${p.name}`], [`${p.name}=`], [`${p.name}[x]=1`]),
        weight: mode === 'valid' ? 0 : 1,
      },
    ),
  );
  const extra = fc.oneof(
    { arbitrary: fc.constant<string[]>([]), weight: mode === 'valid' ? 30 : 6 },
    {
      arbitrary: fc.tuple(hostileString, hostileValue).map(([k, v]) => [`${enc(k)}=${enc(v)}`]),
      weight: 1,
    },
    {
      arbitrary: fc.constantFrom(['%'], ['a=%ZZ'], ['&&&'], ['=x'], ['__proto__[x]=1']),
      weight: 1,
    },
  );
  return fc.tuple(fc.tuple(...pairs), extra).map(([ps, ex]) => {
    const all = [...ps.flat(), ...ex];
    return all.length ? `?${all.join('&')}` : '';
  });
}

const CONTENT_TYPES = [
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/json; charset=utf-16',
  'application/json; charset=latin1',
  'application/vnd.api+json',
  'application/octet-stream',
  'application/xml',
  '*/*',
  '',
];

const INVALID_JSON = [
  '{',
  '{"a":',
  "{'a':1}",
  '{"a":1}garbage',
  'NaN',
  '\u0000',
  '\uFEFF{}',
  '{"__proto__":{"isAdmin":true}}',
  '{"constructor":{"prototype":{"isAdmin":true}}}',
  '{"a":1,"a":2}',
  '['.repeat(50_000) + ']'.repeat(50_000),
  '{"a":'.repeat(20_000) + '1' + '}'.repeat(20_000),
];

interface Body {
  type?: string;
  body?: string;
}

function bodyArb(op: Operation, ids: IdPool): fc.Arbitrary<Body> {
  const json = (v: unknown): Body => ({ type: 'application/json', body: JSON.stringify(v) });
  const takesBody = !!op.body || ['POST', 'PUT', 'PATCH'].includes(op.method);
  const shaped = fc
    .oneof(
      { arbitrary: fromSchema(op.body, ids, '', 'valid'), weight: 3 },
      { arbitrary: fromSchema(op.body, ids, '', 'hostile'), weight: 2 },
    )
    .map(json);
  return fc.oneof(
    { arbitrary: shaped, weight: takesBody ? 12 : 1 },
    { arbitrary: fc.constant<Body>({}), weight: takesBody ? 1 : 12 },
    { arbitrary: fc.constant<Body>({ type: 'application/json' }), weight: 1 },
    { arbitrary: hostileValue.map(json), weight: 1 },
    {
      arbitrary: fc
        .constantFrom(...INVALID_JSON)
        .map((b) => ({ type: 'application/json', body: b })),
      weight: 1,
    },
    {
      arbitrary: fc
        .tuple(fc.constantFrom(...CONTENT_TYPES), shaped)
        .map(([type, b]) => ({ type, body: b.body })),
      weight: 1,
    },
    {
      arbitrary: fc.constantFrom<Body>(json(deepNesting(3000)), {
        type: 'application/json',
        body: `{"a":"${'x'.repeat(1024 * 1024 + 10)}"}`,
      }),
      weight: 1,
    },
  );
}

/** Headers beyond the body type: broken credentials, forged proxies, odd accept values. */
const headerArb: fc.Arbitrary<Record<string, string>> = fc.oneof(
  { arbitrary: fc.constant({}), weight: 10 },
  {
    arbitrary: fc.constantFrom<Record<string, string>>(
      { authorization: 'Bearer ' },
      { authorization: 'Bearer gps_' + 'x'.repeat(40) },
      { authorization: 'Bearer gpi_' + 'x'.repeat(5000) },
      { authorization: 'Basic YWRtaW46YWRtaW4=' },
      { authorization: 'Bearer \u00ff\u00fe' },
      { cookie: 'gatepool_session=' + 'x'.repeat(64) },
      { cookie: 'gatepool_session=%ZZ; gatepool_session=a' },
      { cookie: '=; ;;' },
      { 'x-forwarded-for': 'not-an-ip' },
      { 'x-forwarded-for': '1.2.3.4, , ::ffff:zz' },
      { 'x-forwarded-for': '\u00e9\u00e9' },
      { 'x-forwarded-proto': 'gopher' },
      { 'x-gatepool-request': '1' },
      { accept: 'text/html' },
      { accept: 'application/xml;q=1, */*;q=0' },
      { 'user-agent': 'u'.repeat(8000) },
      { 'user-agent': '\u00c0\u00c1\u00ff' },
      { 'content-encoding': 'gzip' },
      { 'accept-encoding': 'br;q=1e999' },
      { host: 'evil.example' },
    ),
    weight: 2,
  },
);

export function caseArb(op: Operation, world: World): fc.Arbitrary<Case> {
  return fc
    .record({
      actor: fc.constantFrom<Actor>(
        'admin',
        'admin',
        'admin',
        'admin-cookie',
        'viewer',
        'anonymous',
      ),
      csrf: fc.boolean(),
      method: fc.oneof(
        { arbitrary: fc.constant(undefined), weight: 30 },
        {
          arbitrary: fc.constantFrom('HEAD', 'OPTIONS', 'PUT', 'PATCH', 'DELETE', 'POST'),
          weight: 1,
        },
      ),
      path: pathArb(op, world),
      query: queryArb(op, world.ids),
      body: bodyArb(op, world.ids),
      extra: headerArb,
      copies: fc.oneof(
        { arbitrary: fc.constant(1), weight: 7 },
        { arbitrary: fc.constant(3), weight: 1 },
      ),
    })
    .map(({ actor, csrf, method, path, query, body, extra, copies }) => {
      const headers: Record<string, string> = { 'user-agent': 'gatepool-fuzz/1.0' };
      if (actor === 'admin' || actor === 'viewer')
        headers.authorization = `Bearer ${world[actor].token}`;
      if (actor === 'admin-cookie') {
        headers.cookie = `gatepool_session=${world.admin.token}`;
        if (csrf) headers['x-gatepool-request'] = '1';
      }
      if (body.type) headers['content-type'] = body.type;
      Object.assign(headers, extra);
      return {
        actor,
        method: method === op.method ? undefined : method,
        path: path + query,
        headers,
        body: body.body,
        copies,
      };
    });
}

/**
 * Requests an admin client would send: real IDs, schema-valid query and body. What they
 * answer shows which success statuses an operation really returns.
 */
export function validCaseArb(op: Operation, world: World): fc.Arbitrary<Case> {
  const body = op.body
    ? fromSchema(op.body, world.ids, '', 'valid').map((v) => JSON.stringify(v))
    : fc.constant(undefined);
  return fc
    .tuple(pathArb(op, world, 'valid'), queryPairs(op, world.ids, 'valid'), body)
    .map(([path, query, json]) => ({
      actor: 'admin' as const,
      path: path + query,
      headers: {
        'user-agent': 'gatepool-fuzz/1.0',
        authorization: `Bearer ${world.admin.token}`,
        ...(json === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: json,
      copies: 1,
    }));
}
