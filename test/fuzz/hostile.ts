/**
 * Hostile values for the API fuzz test, generated from an operation's JSON schemas: mostly
 * almost-valid values (so requests get past validation into the services and the database),
 * mixed with wrong types, boundary numbers, huge and unstorable strings, unknown keys, deep
 * nesting, crafted cursors and real IDs of the caller's and another organization's objects.
 */
import fc from 'fast-check';
import type { JsonSchema } from './document.js';

/** Real IDs by kind ("users", "gateways", "gateway-pools", "roles" …), own org and another's. */
export type IdPool = Record<string, string[]>;

const b64url = (s: string) => Buffer.from(s).toString('base64url');

/** Cursors: base64url of crafted JSON that decodes but does not point at a row. */
const CURSOR_LIKE: string[] = [
  b64url('["2024-01-01T00:00:00.000Z","not-a-uuid"]'),
  b64url('["2024-01-01T00:00:00.000Z",""]'),
  b64url('["-000001-01-01T00:00:00.000Z","00000000-0000-4000-8000-000000000000"]'),
  b64url('["+275760-09-13T00:00:00.000Z","00000000-0000-4000-8000-000000000000"]'),
  b64url('["2024-01-01T00:00:00.000Z","00000000-0000-4000-8000-000000000000"]'),
  b64url('["2024-01-01",1]'),
  b64url('[0,"x"]'),
  b64url('{"createdAt":"2024-01-01T00:00:00Z","id":"x"}'),
  b64url('[null,null]'),
  b64url('"just a string"'),
  b64url('["2024-01-01T00:00:00.000Z","a\\u0000b"]'),
  b64url('["2024-01-01T00:00:00.000Z","\\ud800"]'),
  b64url('["2024-01-01T00:00:00.000Z","' + 'x'.repeat(120) + '"]'),
  b64url('9'.repeat(30)),
];

/** Strings that broke something somewhere once: text the database, URL or JSON layer dislikes. */
export const NASTY_STRINGS: string[] = [
  '',
  ' ',
  '\u0000',
  'a\u0000b',
  '\r\n',
  'line\r\nX-Injected: 1',
  '\uD800',
  'x\uDC00y',
  '\uFFFF',
  '\uFFFE',
  '\u202E\u0301',
  '😀👩‍👩‍👧‍👦🏳️‍🌈',
  'Ω≈ç√∫˜µ≤≥÷',
  '../../../../etc/passwd',
  '..%2F..%2F..%2Fetc%2Fpasswd',
  '%00',
  '%',
  '%E0%A4%A',
  '\\..\\..\\windows',
  "' OR 1=1 --",
  '"; DROP TABLE users; --',
  '$1',
  '%s%s%s%n',
  '{{7*7}}',
  '<script>alert(1)</script>',
  '__proto__',
  'constructor',
  'toString',
  'null',
  'undefined',
  'true',
  'NaN',
  'Infinity',
  '-Infinity',
  '-0',
  '1e309',
  '-1',
  '0x10',
  '9'.repeat(40),
  '00000000-0000-0000-0000-000000000000',
  'ffffffff-ffff-ffff-ffff-ffffffffffff',
  'FFFFFFFF-FFFF-4FFF-BFFF-FFFFFFFFFFFF',
  '00000000-0000-4000-8000-00000000000g',
  '0000-01-01T00:00:00Z',
  '-000001-01-01T00:00:00.000Z',
  '+275760-09-13T00:00:00.000Z',
  '+275760-09-13T00:00:00.001Z',
  '9999-12-31T23:59:59.999999999Z',
  '1970-01-01T00:00:00+23:59',
  '2024-02-30T00:00:00Z',
  '0001-01-01T00:00:00.000Z',
  '4714-11-24T00:00:00.000Z',
  'epoch',
  'infinity',
  '10.0.0.1:99999',
  '[::1]:0',
  '*:*',
  '0.0.0.0/0:1-65535',
  'http://169.254.169.254/latest/meta-data',
  'https://[::1',
  'a'.repeat(300),
  'é'.repeat(5000),
  'a'.repeat(70_000),
  ...CURSOR_LIKE,
  '123456789012345678',
  '999999999999999999',
  '-1',
];

export const PROTOTYPE_KEYS = [
  '__proto__',
  'constructor',
  'toString',
  'hasOwnProperty',
  'valueOf',
  'isPrototypeOf',
  '__defineGetter__',
];

/** Boundary numbers: what overflows int4/int8/float, coerces oddly, or is not an integer. */
export const NASTY_NUMBERS: number[] = [
  0,
  -0,
  -1,
  1,
  0.5,
  -0.5,
  59,
  60,
  2 ** 31 - 1,
  2 ** 31,
  -(2 ** 31) - 1,
  2 ** 32,
  2 ** 53,
  -(2 ** 53),
  Number.MAX_SAFE_INTEGER + 2,
  1e21,
  1e308,
  -1e308,
  Number.MIN_VALUE,
  Number.EPSILON,
];

const nastyString = fc.constantFrom(...NASTY_STRINGS);
const nastyNumber = fc.constantFrom(...NASTY_NUMBERS);

/** Any string at all, weighted towards the nasty ones. */
export const hostileString: fc.Arbitrary<string> = fc.oneof(
  { arbitrary: nastyString, weight: 5 },
  { arbitrary: fc.string({ unit: 'binary', maxLength: 40 }), weight: 2 },
  { arbitrary: fc.string({ unit: 'grapheme', maxLength: 20 }), weight: 1 },
  { arbitrary: fc.string({ maxLength: 20 }), weight: 1 },
  { arbitrary: fc.uuid().map(String), weight: 1 },
);

/** Nested arrays/objects `depth` levels deep: recursion limits in parsers and validators. */
export function deepNesting(depth: number, leaf: unknown = 1): unknown {
  let v: unknown = leaf;
  for (let i = 0; i < depth; i++) v = i % 2 ? [v] : { a: v };
  return v;
}

/** A value of any JSON type, including the nasty ones and deep structures. */
export const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  { arbitrary: hostileString, weight: 4 },
  { arbitrary: nastyNumber, weight: 3 },
  { arbitrary: fc.constantFrom(null, true, false, [], {}, [null], { '': '' }), weight: 2 },
  {
    arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => v as unknown),
    weight: 2,
  },
  { arbitrary: fc.constantFrom(deepNesting(60), deepNesting(600)), weight: 1 },
);

const ZERO_UUID = '00000000-0000-0000-0000-000000000000';

/** A valid-looking or hostile value for one id-like field: real IDs of this kind first. */
function idValue(kind: string, ids: IdPool, mode: Mode): fc.Arbitrary<unknown> {
  const own = ids[kind] ?? [];
  const all = Object.values(ids).flat();
  const arbs: fc.WeightedArbitrary<unknown>[] = [
    { arbitrary: fc.uuid().map(String), weight: 1 },
    { arbitrary: mode === 'valid' ? fc.constant(ZERO_UUID) : hostileValue, weight: 1 },
  ];
  if (own.length) arbs.push({ arbitrary: fc.constantFrom(...own), weight: 6 });
  if (all.length) arbs.push({ arbitrary: fc.constantFrom(...all), weight: 2 });
  return fc.oneof(...arbs);
}

/** Which kind of object a field or path parameter names: `poolIds` → gateway-pools. */
export function kindOf(name: string, segmentBefore?: string): string {
  const byName: Record<string, string> = {
    gatewayId: 'gateways',
    poolId: 'gateway-pools',
    poolIds: 'gateway-pools',
    gatewayPoolId: 'gateway-pools',
    identityId: 'identities',
    tokenId: 'tokens',
    slug: 'roles',
    role: 'roles',
    actorId: 'users',
    organizationId: 'organizations',
  };
  return byName[name] ?? segmentBefore ?? name;
}

function types(schema: JsonSchema): string[] {
  if (Array.isArray(schema.type)) return schema.type;
  if (schema.type) return [schema.type];
  if (schema.properties) return ['object'];
  if (schema.items) return ['array'];
  return [];
}

/**
 * `valid`: values the schema accepts (right type, length, range, pattern, required keys),
 * drawn from the awkward end (unstorable text, extreme dates, edge lengths, real IDs), so
 * requests get past validation into the services and the database, plus at most one field
 * swapped for something hostile. `hostile`: anything goes at every level.
 */
export type Mode = 'valid' | 'hostile';

function numberValue(schema: JsonSchema, integer: boolean, mode: Mode): fc.Arbitrary<unknown> {
  const min = typeof schema.minimum === 'number' ? schema.minimum : -(2 ** 31);
  const max = typeof schema.maximum === 'number' ? schema.maximum : 2 ** 31;
  const inRange = integer ? fc.integer({ min, max }) : fc.double({ min, max, noNaN: true });
  if (mode === 'valid') return fc.oneof(fc.constantFrom(min, max), inRange);
  const edges = [min, max, min - 1, max + 1, Math.floor((min + max) / 2)];
  return fc.oneof(
    { arbitrary: fc.constantFrom(...edges), weight: 3 },
    { arbitrary: inRange, weight: 3 },
    { arbitrary: nastyNumber, weight: 2 },
    { arbitrary: fc.constantFrom(...edges.map(String), '1.5', ' 1', '0x1'), weight: 1 },
  );
}

/** Dates at the edges of what JavaScript, ISO 8601 with four-digit years and PostgreSQL hold. */
const EDGE_DATES = [
  '0000-01-01T00:00:00Z',
  '0001-01-01T00:00:00.000Z',
  '1969-12-31T23:59:59.999Z',
  '1970-01-01T00:00:00Z',
  '2038-01-19T03:14:08Z',
  '9999-12-31T23:59:59.999999Z',
  '2024-02-29T12:00:00+23:59',
  '0000-01-01T00:00:00-23:59',
];

function compile(pattern: string | undefined): RegExp | undefined {
  if (!pattern) return undefined;
  try {
    return new RegExp(pattern);
  } catch {
    return undefined; // a pattern JavaScript cannot compile
  }
}

function cursorValue(): fc.Arbitrary<string> {
  return fc.oneof(
    fc.constantFrom(...CURSOR_LIKE),
    fc
      .tuple(
        fc.oneof(
          fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
          fc.constantFrom(...EDGE_DATES),
          hostileValue,
        ),
        fc.oneof(fc.uuid().map(String), hostileValue),
      )
      .map((pair) => b64url(JSON.stringify(pair))),
  );
}

function stringValue(
  schema: JsonSchema,
  name: string,
  ids: IdPool,
  mode: Mode,
): fc.Arbitrary<unknown> {
  const minLength = schema.minLength ?? 0;
  const max = schema.maxLength ?? 64;
  const re = compile(schema.pattern);
  const fits = (v: unknown) =>
    typeof v === 'string' && v.length >= minLength && v.length <= max && (!re || re.test(v));
  const options: fc.WeightedArbitrary<unknown>[] = [];
  const nasty = NASTY_STRINGS.filter(fits);
  if (mode === 'hostile') {
    options.push(
      { arbitrary: hostileString, weight: 4 },
      {
        arbitrary: fc.constantFrom(
          'a'.repeat(minLength),
          'a'.repeat(Math.min(max, 100_000)),
          'a'.repeat(Math.min(max + 1, 300_000)),
        ),
        weight: 1,
      },
    );
  } else {
    if (nasty.length) options.push({ arbitrary: fc.constantFrom(...nasty), weight: 4 });
    if (!re)
      options.push(
        {
          arbitrary: fc.string({ unit: 'binary', minLength, maxLength: Math.min(max, 40) }),
          weight: 2,
        },
        {
          arbitrary: fc.constantFrom(
            'a'.repeat(minLength || 1),
            '\u{1F600}'.repeat(Math.min(max >> 1, 50_000)),
          ),
          weight: 1,
        },
      );
  }
  if (!re)
    options.push({ arbitrary: fc.string({ minLength, maxLength: Math.min(max, 40) }), weight: 2 });
  if (re)
    options.push({
      arbitrary: fc.stringMatching(re).filter((v) => mode === 'hostile' || fits(v)),
      weight: 4,
    });
  if (name === 'cursor') options.push({ arbitrary: cursorValue(), weight: 12 });
  if (schema.format === 'uuid')
    options.push({ arbitrary: idValue(kindOf(name), ids, mode), weight: 12 });
  if (schema.format === 'date-time')
    options.push({
      arbitrary: fc.oneof(
        fc.constantFrom(...EDGE_DATES),
        fc
          .date({
            min: new Date(mode === 'valid' ? '0000-01-01T00:00:00Z' : -8.64e15),
            max: new Date(mode === 'valid' ? '9999-12-31T23:59:59Z' : 8.64e15),
            noInvalidDate: true,
          })
          .map((d) => d.toISOString()),
      ),
      weight: 6,
    });
  if (schema.format === 'email')
    options.push({
      arbitrary: fc.oneof(
        fc.emailAddress(),
        fc.constantFrom('a@b.co', 'ADMIN@EXAMPLE.COM', ' padded@example.com '),
      ),
      weight: 6,
    });
  if (/host|target/i.test(name))
    options.push({
      arbitrary: fc.constantFrom(
        '127.0.0.1:1',
        'localhost:0',
        '10.0.0.5:5432',
        'https://127.0.0.1:1',
        '[::1]:65535',
        'kubernetes.default.svc',
      ),
      weight: 3,
    });
  // Words the API knows for this field (role slugs, permission subjects and actions).
  const known = schema.format === 'uuid' ? undefined : ids[kindOf(name)];
  if (known?.length) options.push({ arbitrary: fc.constantFrom(...known), weight: 8 });
  // Names of Object.prototype members: a lookup table indexed by a client's word finds them.
  const proto = PROTOTYPE_KEYS.filter((k) => mode === 'hostile' || fits(k));
  if (proto.length)
    options.push({ arbitrary: fc.constantFrom(...proto), weight: known?.length ? 4 : 1 });
  const any = fc.oneof(...options);
  // Schema-valid means valid: a format (uuid, email) or pattern the value does not meet is hostile mode's job.
  return mode === 'valid' && (re || schema.format)
    ? any.filter((v) => typeof v === 'string' && fits(v) && formatOk(schema.format, v))
    : any;
}

function formatOk(format: string | undefined, v: string): boolean {
  if (format === 'uuid')
    return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(v);
  if (format === 'email') return /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(v.trim());
  return true;
}

/**
 * Values for `schema` in `mode`. `name` is the field or parameter name (it picks real IDs of
 * the right kind and the API's own words), `depth` bounds recursion.
 */
export function fromSchema(
  schema: JsonSchema | undefined,
  ids: IdPool,
  name = '',
  mode: Mode = 'hostile',
  depth = 0,
): fc.Arbitrary<unknown> {
  if (!schema || depth > 4) return mode === 'valid' ? fc.jsonValue({ maxDepth: 2 }) : hostileValue;
  const alternatives = schema.anyOf ?? schema.oneOf;
  if (alternatives?.length) {
    const alts = alternatives.map((s) => fromSchema(s, ids, name, mode, depth + 1));
    return mode === 'valid' ? fc.oneof(...alts) : fc.oneof(...alts, hostileValue);
  }
  const options: fc.WeightedArbitrary<unknown>[] = [
    {
      arbitrary: schema.enum?.length
        ? fc.constantFrom(...schema.enum)
        : schemaShaped(schema, ids, name, mode, depth),
      weight: 8,
    },
  ];
  if (schema.nullable) options.push({ arbitrary: fc.constant(null), weight: 1 });
  if (mode === 'hostile') {
    options.push({ arbitrary: hostileValue, weight: 1 });
    if (schema.enum?.length)
      options.push({ arbitrary: schemaShaped(schema, ids, name, mode, depth), weight: 2 });
  }
  return fc.oneof(...options);
}

function schemaShaped(
  schema: JsonSchema,
  ids: IdPool,
  name: string,
  mode: Mode,
  depth: number,
): fc.Arbitrary<unknown> {
  const t = types(schema);
  if (t.includes('object')) return objectValue(schema, ids, mode, depth);
  if (t.includes('array')) {
    const max = schema.maxItems ?? 8;
    const item = fromSchema(schema.items, ids, name, mode, depth + 1);
    const fitting = fc.array(item, {
      minLength: schema.minItems ?? 0,
      maxLength: Math.min(max, 6),
    });
    if (mode === 'valid') return fitting;
    return fc.oneof(
      { arbitrary: fitting, weight: 4 },
      { arbitrary: item.map((v) => Array.from({ length: max + 1 }, () => v)), weight: 1 },
    );
  }
  if (t.includes('integer')) return numberValue(schema, true, mode);
  if (t.includes('number')) return numberValue(schema, false, mode);
  if (t.includes('boolean'))
    return mode === 'valid'
      ? fc.boolean()
      : fc.oneof(fc.boolean(), fc.constantFrom('true', 0, 1, 'yes'));
  if (t.includes('string')) return stringValue(schema, name, ids, mode);
  return mode === 'valid' ? fc.jsonValue({ maxDepth: 2 }) : hostileValue;
}

function objectValue(
  schema: JsonSchema,
  ids: IdPool,
  mode: Mode,
  depth: number,
): fc.Arbitrary<unknown> {
  const props = schema.properties ?? {};
  const required = new Set(schema.required ?? []);
  const keys = Object.keys(props);
  const fields: Record<string, fc.Arbitrary<unknown>> = {};
  for (const [key, sub] of Object.entries(props)) {
    const value = fromSchema(sub, ids, key, mode, depth + 1);
    const present = mode === 'valid' ? 1 : 9;
    fields[key] = required.has(key)
      ? fc.oneof(
          { arbitrary: value, weight: present },
          { arbitrary: fc.constant(undefined), weight: mode === 'valid' ? 0 : 1 },
        )
      : // Valid mode leaves most optional fields out: each one present is one more chance
        // for a semantic 4xx before the request gets anywhere.
        fc.oneof(
          { arbitrary: value, weight: 1 },
          { arbitrary: fc.constant(undefined), weight: mode === 'valid' ? 2 : 1 },
        );
  }
  // Valid mode: now and then one key (known or not) holds something hostile.
  const mutation: fc.Arbitrary<[string, unknown][]> =
    mode === 'valid'
      ? fc.oneof(
          { arbitrary: fc.constant<[string, unknown][]>([]), weight: 4 },
          {
            arbitrary: fc
              .tuple(keys.length ? fc.constantFrom(...keys) : hostileString, hostileValue)
              .map((kv) => [kv]),
            weight: 1,
          },
        )
      : fc.oneof(
          { arbitrary: fc.constant<[string, unknown][]>([]), weight: 8 },
          {
            arbitrary: fc.array(
              fc.tuple(
                fc.oneof(
                  hostileString,
                  fc.constantFrom('__proto__', 'constructor', 'prototype', 'orgId', 'id'),
                ),
                hostileValue,
              ),
              { maxLength: 3 },
            ),
            weight: 2,
          },
        );
  return fc.tuple(fc.record(fields), mutation).map(([known, extra]) => {
    const out: Record<string, unknown> = {};
    // defineProperty: a literal "__proto__" key must travel as data, not set a prototype.
    for (const [k, v] of Object.entries(known)) if (v !== undefined) defineKey(out, k, v);
    for (const [k, v] of extra) defineKey(out, k, v);
    return out;
  });
}

function defineKey(o: Record<string, unknown>, k: string, v: unknown): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}
