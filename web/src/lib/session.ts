import { useQuery } from '@tanstack/react-query';
import { api, ApiError, isUnreachable, unwrap } from '../api/client';
import type { LicenseView, Me } from '../api/types';
import { POLL_MS } from './live';

export const meQuery = {
  queryKey: ['me'],
  queryFn: () => unwrap<Me>(api.GET('/api/v1/me')),
  // Asked again only while the platform is away; a 401 shows the sign-in form at once.
  retry: (_count: number, err: unknown) => isUnreachable(err),
  retryDelay: () => POLL_MS,
  staleTime: 30_000,
  // Coming back to the tab shows the session as it is now (ended, another organization).
  refetchOnWindowFocus: 'always',
} as const;

export function useMe() {
  return useQuery(meQuery);
}

/**
 * Whether the signed-in person must first replace a password someone else chose (the admin
 * who invited them): until then the platform answers nothing but /me, the change and sign-out.
 * Read through a widened type so the UI builds before schema.d.ts is regenerated.
 */
export function mustChangePassword(me: Me | undefined): boolean {
  return (
    (me as (Me & { passwordChangeRequired?: boolean }) | undefined)?.passwordChangeRequired === true
  );
}

export function useLicense() {
  return useQuery({
    queryKey: ['license'],
    queryFn: () => unwrap<LicenseView>(api.GET('/api/v1/license')),
    staleTime: 30_000,
  });
}

/**
 * True when the org's plan includes gateway pools (what the server enforces), or when the plan
 * is unknown: a role without License:read (403) may well be in an Enterprise org, so it gets
 * the normal UI, not an upgrade prompt; the API says what it may not do.
 */
export function hasPools(license: { data?: LicenseView; error?: unknown }): boolean {
  if (license.data) return license.data.features.gatewayPool === true;
  return license.error instanceof ApiError && license.error.status === 403;
}

/**
 * Whether `me` may do `action` on `subject`, and if not, the words to show: controls the
 * user may not use say which permission is missing.
 */
export function permission(
  me: Me | undefined,
  action: string,
  subject: string,
): { allowed: boolean; reason: string } {
  const allowed = !!me?.permissions.some((p) => p.subject === subject && p.action === action);
  return {
    allowed,
    reason: allowed ? '' : `Your role "${me?.roleName ?? 'unknown'}" lacks ${subject}:${action}.`,
  };
}
