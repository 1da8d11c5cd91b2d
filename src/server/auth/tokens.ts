import { createHash, randomBytes } from 'node:crypto';

/**
 * Bearer secrets: a kind prefix (so a leaked token says what it is, and lookup knows which
 * table to search) + 32 random bytes. Only the SHA-256 is stored: the token has 256 bits of
 * entropy, so a slow hash would add nothing.
 */
export const TOKEN_PREFIX = {
  session: 'gps_',
  identity: 'gpi_',
  enrollment: 'gpe_',
} as const;

export function newToken(kind: keyof typeof TOKEN_PREFIX): { token: string; hash: string } {
  const token = TOKEN_PREFIX[kind] + randomBytes(32).toString('base64url');
  return { token, hash: hashToken(token) };
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}
