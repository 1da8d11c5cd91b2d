/**
 * Why a credential no longer works, told to whoever still holds it: "you were removed from
 * Acme" or "this token was revoked" instead of one "invalid or expired" for every case. Asked
 * only on the refusal path, so a valid credential costs nothing more. Only the holder of a
 * token that once worked learns anything: an unknown token stays "invalid".
 */
import type { Db, Tx } from '../db/client.js';
import { insertSessionEndings, refusedIdentityToken, refusedSession } from './queries.js';

/** Sessions ended by someone else's action, recorded before they go (migration 0009). */
export type SessionEnding = 'removed' | 'password';

export function recordSessionEndings(
  tx: Db | Tx,
  reason: SessionEnding,
  who: { userId: string; orgId?: string; keepSessionId?: string },
): Promise<void> {
  return insertSessionEndings(tx, reason, who);
}

/**
 * Why a credential that once worked is refused: `reason` (in the 401's `details`) lets a client
 * show `message` rather than its own "signed out or expired".
 */
export interface Refusal {
  reason: 'removed' | 'password' | 'signed_out' | 'expired' | 'revoked';
  message: string;
}

/** Why a session token is refused, or undefined for an unknown one. */
export async function whySessionRefused(db: Db, tokenHash: string): Promise<Refusal | undefined> {
  const { ending, session } = await refusedSession(db, tokenHash);
  if (ending?.reason === 'removed')
    return {
      reason: 'removed',
      message:
        `You were removed from organization "${ending.orgName}": log in to another organization ` +
        'you belong to, or ask one of its admins to invite you again.',
    };
  if (ending?.reason === 'password')
    return {
      reason: 'password',
      message:
        'Your password was changed in another session, which ended this one: log in again with the new password.',
    };
  if (!session) return undefined;
  if (session.revokedAt)
    return { reason: 'signed_out', message: 'This session was signed out: log in again.' };
  if (session.expiresAt && session.expiresAt.getTime() <= Date.now())
    return { reason: 'expired', message: 'Your session expired: log in again.' };
  return undefined;
}

/** Why a machine identity's token is refused, or undefined for an unknown one. */
export async function whyTokenRefused(db: Db, tokenHash: string): Promise<Refusal | undefined> {
  const token = await refusedIdentityToken(db, tokenHash);
  if (!token) return undefined;
  if (token.revokedAt)
    return {
      reason: 'revoked',
      message: `This access token of identity "${token.identity}" was revoked: use another, or ask an admin for a new one.`,
    };
  if (token.expiresAt && token.expiresAt.getTime() <= Date.now())
    return {
      reason: 'expired',
      message: `This access token of identity "${token.identity}" expired at ${token.expiresAt.toISOString()}: create a new one (or ask an admin).`,
    };
  return undefined;
}
