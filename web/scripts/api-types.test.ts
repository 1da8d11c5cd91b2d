import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { API_TYPES_FILE, generateApiTypes } from './api-types.js';

describe('the UI API client types', () => {
  it('match the platform OpenAPI document (regenerate with `npm run web:api`)', async () => {
    const fresh = await generateApiTypes();
    const committed = readFileSync(API_TYPES_FILE, 'utf8');
    // A plain boolean first: a 2,000-line diff in the failure helps nobody.
    if (committed !== fresh) {
      expect.fail(
        'web/src/api/schema.d.ts is stale: the API changed since it was generated. Run `npm run web:api` and commit it.',
      );
    }
  }, 60_000);
});
