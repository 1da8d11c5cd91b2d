import type {
  FastifyBaseLogger,
  FastifyInstance,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
  RawServerDefault,
} from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { and, eq, gt, lt, or, type SQL } from 'drizzle-orm';
import type { AnyPgColumn } from 'drizzle-orm/pg-core';
import { z } from 'zod';
import { badRequest } from './errors.js';

export type Api = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  ZodTypeProvider
>;

/** Shared request vocabulary: the same words get the same rules and messages everywhere. */
export const uuidParam = (name: string) => z.object({ [name]: z.uuid(`${name} must be a UUID`) });
export const idParams = z.object({ id: z.uuid('id must be a UUID') });
/** A gateway or pool given by id or by name (resolved in the caller's org by the service). */
export const reference = (field: string, what: string) =>
  z
    .string()
    .trim()
    .min(1, `${field} must be a ${what} id or name`)
    .max(100, `${field} must be a ${what} id or name (at most 100 characters)`);

export const email = z
  .string()
  .trim()
  .max(254, 'email must be at most 254 characters')
  .toLowerCase()
  .pipe(z.email('email must be a valid email address'));
export const password = z
  .string()
  .min(12, 'password must be at least 12 characters')
  .max(256, 'password must be at most 256 characters');
export const displayName = (what: string) =>
  z
    .string()
    .trim()
    .min(1, `${what} must not be empty`)
    .max(128, `${what} must be at most 128 characters`)
    // PostgreSQL cannot store NUL, nor a lone UTF-16 surrogate inside JSON (audit metadata).
    .refine(
      (s) =>
        !s.includes('\u0000') &&
        !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s),
      {
        message: `${what} must not contain NUL characters or invalid Unicode`,
      },
    );
export const slug = (what: string, max = 32) =>
  z
    .string()
    .min(1, `${what} must not be empty`)
    .max(max, `${what} must be at most ${max} characters`)
    .regex(
      /^[a-z0-9]+(-[a-z0-9]+)*$/,
      `${what} must use lowercase letters, digits and single hyphens (e.g. "prod-eu-1")`,
    );

const LIMIT_RULE = 'limit must be one whole number from 1 to 200';
/**
 * `?limit=`: 1–200, default 50; anything else (`x`, given twice) says so, not "received NaN".
 * Digits only: Number() alone would take `0x10`, `1e2` or ` 5` for numbers.
 */
export const limitParam = z.preprocess(
  (v) => (typeof v === 'string' && !/^\d{1,4}$/.test(v) ? Number.NaN : v),
  z.coerce
    .number({ error: LIMIT_RULE })
    .int(LIMIT_RULE)
    .min(1, LIMIT_RULE)
    .max(200, LIMIT_RULE)
    .default(50),
);

export const pageQuery = z.strictObject({
  limit: limitParam,
  cursor: z.string().max(200).optional(),
});

/**
 * Instants PostgreSQL stores in a timestamptz and both drivers send: years 1 to 9999. JavaScript
 * Dates reach ±275760 and year 0, which the database refuses with a 500-level error.
 */
const MIN_STORABLE = Date.parse('0001-01-01T00:00:00.000Z');
const MAX_STORABLE = Date.parse('9999-12-31T23:59:59.999Z');
export const isStorableDate = (d: Date): boolean => {
  const t = d.getTime();
  return !Number.isNaN(t) && t >= MIN_STORABLE && t <= MAX_STORABLE;
};

/** An ISO 8601 date-time query parameter (`from`, `to`) in the range the database stores. */
export const dateTimeParam = (name: string) =>
  z.iso
    .datetime({ offset: true, error: `${name} must be an ISO 8601 date-time` })
    .transform((s) => new Date(s))
    .refine(isStorableDate, `${name} must be between years 0001 and 9999`);

/** Keyset cursor over (createdAt, id): stable under inserts, unlike offsets. */
export function encodeCursor(createdAt: Date, id: string): string {
  return Buffer.from(JSON.stringify([createdAt.toISOString(), id])).toString('base64url');
}

const cursorTuple = z.tuple([
  z.iso
    .datetime({ offset: true })
    .transform((s) => new Date(s))
    .refine(isStorableDate),
  z.uuid(),
]);

/**
 * Cursors are opaque to clients, so anything but one of ours is refused here, in one place:
 * a forged id or date must never reach SQL, where it would fail as a server error.
 */
export function decodeCursor(
  cursor: string | undefined,
): { createdAt: Date; id: string } | undefined {
  if (!cursor) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(cursor, 'base64url').toString());
  } catch {
    raw = undefined;
  }
  const parsed = cursorTuple.safeParse(raw);
  if (!parsed.success)
    throw badRequest('cursor is invalid: pass the nextCursor of a previous page.');
  const [createdAt, id] = parsed.data;
  return { createdAt, id };
}

export const errorBody = z.object({
  error: z.object({ code: z.string(), message: z.string(), details: z.unknown().optional() }),
});

/** Rows past the cursor in (createdAt, id) order, ascending or descending (newest first). */
function pastCursor(
  createdAtCol: AnyPgColumn,
  idCol: AnyPgColumn,
  cursor: string | undefined,
  past: typeof gt,
): SQL | undefined {
  const c = decodeCursor(cursor);
  if (!c) return undefined;
  return or(past(createdAtCol, c.createdAt), and(eq(createdAtCol, c.createdAt), past(idCol, c.id)));
}

/** Rows after the cursor in (createdAt, id) ascending order. */
export const afterCursor = (createdAtCol: AnyPgColumn, idCol: AnyPgColumn, cursor?: string) =>
  pastCursor(createdAtCol, idCol, cursor, gt);

/** Rows after the cursor in (createdAt, id) descending order (newest first). */
export const beforeCursor = (createdAtCol: AnyPgColumn, idCol: AnyPgColumn, cursor?: string) =>
  pastCursor(createdAtCol, idCol, cursor, lt);

/** Splits a `limit + 1` fetch into the page and the cursor of the next one. */
export function pageOf<T extends { createdAt: Date; id: string }>(
  rows: T[],
  limit: number,
): { items: T[]; nextCursor: string | null } {
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  return {
    items,
    nextCursor: rows.length > limit && last ? encodeCursor(last.createdAt, last.id) : null,
  };
}

/** The response schema of a page of `item`s. */
export const pageSchema = <T extends z.ZodType>(item: T) =>
  z.object({ items: z.array(item), nextCursor: z.string().nullable() });

/** The response of a route that answers 204 with no body. */
export const noContent = z.null();
