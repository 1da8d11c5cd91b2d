/**
 * The API's JSON body parser: Fastify's own (prototype-poisoning keys refused), with two answers
 * a person can act on where Fastify's are unhelpful:
 *  - an empty body with `Content-Type: application/json` on a route that takes no body (many
 *    clients send that header on every DELETE) is no body, not a 400;
 *  - a body that is valid JSON but holds `__proto__` or `constructor.prototype` says so, rather
 *    than "not valid JSON", which sends the sender looking for a syntax error that is not there.
 */
import type { FastifyInstance } from 'fastify';
import { InvalidInputError } from '../errors.js';

const FORBIDDEN_KEY =
  'Request body contains the key "__proto__" or "constructor.prototype", which is not allowed: rename or remove it.';

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

export function installJsonBodyParser(app: FastifyInstance): void {
  const fastifys = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    const text = body as string;
    if (text.length === 0 && !req.routeOptions.schema?.body) return done(null, undefined);
    fastifys(req, text, (err, value) => {
      if (err && text.length > 0 && isJson(text))
        return done(new InvalidInputError(FORBIDDEN_KEY), undefined);
      done(err, value);
    });
  });
}
