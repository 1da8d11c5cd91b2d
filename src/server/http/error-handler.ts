import type { FastifyError, FastifyInstance } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import {
  DATABASE_SCHEMA_MISSING,
  DATABASE_UNAVAILABLE,
  DomainError,
  errorBodyOf,
  isUnstorableText,
  RateLimitedError,
  statusOf,
} from './errors.js';
import {
  DATABASE_RETRY_AFTER_SECONDS,
  isDatabaseUnavailable,
  isSchemaMissing,
  outageLogger,
} from '../db/errors.js';

type Issue = {
  instancePath?: string;
  message?: string;
  keyword?: string;
  params?: { issues?: { message?: string }[] };
};

/**
 * A bad key in a map (labels) is reported by zod at the key's own path as "Invalid key in
 * record", its real message one level down: name the map, quote the key, give that message.
 */
function keyIssue(i: Issue): Issue {
  if (i.keyword !== 'invalid_key') return i;
  const path = i.instancePath ?? '';
  const at = path.lastIndexOf('/');
  const key = path.slice(at + 1);
  const why = i.params?.issues?.[0]?.message ?? 'not a valid key';
  return { instancePath: path.slice(0, at), message: `key "${key}": ${why}` };
}

/** `body.email: Invalid email address; body.role: Required` — names each offending field. */
function describeIssues(
  context: string,
  issues: Issue[],
): { message: string; fields: { field: string; message: string }[] } {
  const fields = issues.map(keyIssue).map((i) => {
    const path = (i.instancePath ?? '').replace(/^\//, '').replaceAll('/', '.');
    return { field: path ? `${context}.${path}` : context, message: i.message ?? 'invalid' };
  });
  return {
    message: `Invalid request: ${fields.map((f) => `${f.field}: ${f.message}`).join('; ')}`,
    fields,
  };
}

const FASTIFY_CODES: Record<string, { code: string; message: string }> = {
  FST_ERR_CTP_INVALID_JSON_BODY: {
    code: 'bad_request',
    message: 'Request body is not valid JSON.',
  },
  FST_ERR_CTP_EMPTY_JSON_BODY: {
    code: 'bad_request',
    message: 'Request body is empty: this request takes a JSON object.',
  },
  FST_ERR_CTP_BODY_TOO_LARGE: { code: 'payload_too_large', message: 'Request body is too large.' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: {
    code: 'unsupported_media_type',
    message: 'Unsupported Content-Type: send application/json.',
  },
};

/** The 404 body for a path no route serves; a long path is shortened, not echoed whole. */
export function noRoute(method: string, url: string): { error: { code: string; message: string } } {
  const path = url.split('?')[0] ?? '';
  const shown = path.length > 200 ? `${path.slice(0, 200)}…` : path;
  return { error: { code: 'not_found', message: `No route ${method} ${shown}.` } };
}

export function installErrorHandling(app: FastifyInstance): void {
  const dbOutage = outageLogger((fields, message) => app.log.warn(fields, message));
  app.setErrorHandler((err: FastifyError, req, reply) => {
    const domain: unknown = err;
    if (domain instanceof DomainError) {
      if (domain instanceof RateLimitedError && domain.retryAfterSeconds)
        void reply.header('retry-after', String(domain.retryAfterSeconds));
      return reply.code(statusOf(domain)).send(errorBodyOf(domain));
    }
    if (hasZodFastifySchemaValidationErrors(err)) {
      const { message, fields } = describeIssues(
        err.validationContext ?? 'body',
        err.validation as Issue[],
      );
      return reply
        .code(400)
        .send({ error: { code: 'validation_failed', message, details: { fields } } });
    }
    const known = err.code ? FASTIFY_CODES[err.code] : undefined;
    if (known) return reply.code(err.statusCode ?? 400).send({ error: known });
    if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
      return reply
        .code(err.statusCode)
        .send({ error: { code: 'bad_request', message: err.message } });
    }
    if (isDatabaseUnavailable(err)) {
      // A restart or failover of PostgreSQL: the request may simply be tried again. Logged
      // now and then, not once per request of the outage.
      dbOutage(`${req.method} ${req.routeOptions.url ?? req.url}`, err);
      return reply
        .code(503)
        .header('retry-after', String(DATABASE_RETRY_AFTER_SECONDS))
        .send(DATABASE_UNAVAILABLE);
    }
    if (isSchemaMissing(err)) {
      dbOutage(`${req.method} ${req.routeOptions.url ?? req.url}: tables missing`, err);
      return reply.code(503).send(DATABASE_SCHEMA_MISSING);
    }
    if (isUnstorableText(err)) {
      // Input that passed validation but cannot be stored, e.g. a NUL byte inside a string.
      return reply.code(400).send({
        error: {
          code: 'bad_request',
          message: 'The request contains text that cannot be stored (such as a NUL character).',
        },
      });
    }
    req.log.error({ err }, 'unhandled error');
    return reply.code(500).send({
      error: {
        code: 'internal',
        message: 'Internal server error; the platform log has details.',
      },
    });
  });

  app.setNotFoundHandler((req, reply) => reply.code(404).send(noRoute(req.method, req.url)));
}
