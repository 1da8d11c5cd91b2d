import * as Tooltip from '@radix-ui/react-tooltip';
import { useMutation, useQuery, useQueryClient, type Query } from '@tanstack/react-query';
import { Link, Outlet, useRouter, useRouterState } from '@tanstack/react-router';
import { useEffect, useRef, useState, useSyncExternalStore } from 'react';
import { api, ApiError, platformReachability, unwrap } from '../api/client';
import type { PendingInvitation } from '../api/types';
import { liveLabel, useLiveConnected, useLiveHealth } from '../lib/live';
import { mustChangePassword, permission, useLicense, useMe } from '../lib/session';
import { announceSessionChange, useSessionChangesOfOtherTabs } from '../lib/tabs';
import { ChoosePassword, Setup, SignIn } from '../pages/SignIn';
import { Button, ErrorText, Form, Input, Loading, WarningNotices } from './ui';

const NAV = [
  { to: '/gateways', label: 'Gateways', needs: ['read', 'Gateway'] },
  { to: '/enrollment-tokens', label: 'Enrollment tokens', needs: ['read', 'EnrollmentToken'] },
  { to: '/access-targets', label: 'Access targets', needs: ['list', 'AccessTarget'] },
  { to: '/identities', label: 'Identities', needs: ['read', 'Identity'] },
  { to: '/settings', label: 'Organization', needs: ['read', 'Settings'] },
  { to: '/audit', label: 'Audit log', needs: ['read', 'AuditLog'] },
] as const;

/** The platform's words for a session that once worked (removed, password changed, …). */
function explained(error: ApiError): string | undefined {
  const reason = (error.details as { reason?: unknown } | undefined)?.reason;
  return typeof reason === 'string' ? error.message : undefined;
}

/** Setup when the platform has no admin, sign-in without a session, else the app. */
export function Root() {
  const bootstrap = useQuery({
    queryKey: ['bootstrap'],
    queryFn: () => unwrap<{ bootstrapped: boolean }>(api.GET('/api/v1/bootstrap')),
    staleTime: Infinity,
  });
  const me = useMe();
  const reachable = useReachable();
  const sessionEnded = me.error instanceof ApiError && me.error.status === 401;
  const signedOut = (bootstrap.data && !bootstrap.data.bootstrapped) || sessionEnded;
  // The platform refuses everything but the change itself until the person chose a password.
  const choosePassword = !sessionEnded && mustChangePassword(me.data);
  // A failed refetch keeps the last answer: the organization is that of a session that ended.
  const organizationId = sessionEnded || choosePassword ? undefined : me.data?.organization.id;
  useLiveHealth(organizationId);
  useFollowOrganization(organizationId);
  useSessionChangesOfOtherTabs();
  useEffect(() => {
    if (signedOut)
      document.title = `${bootstrap.data?.bootstrapped === false ? 'Set up' : 'Sign in'} · gatepool`;
    else if (choosePassword) document.title = 'Choose your password · gatepool';
  }, [signedOut, choosePassword, bootstrap.data?.bootstrapped]);
  let body;
  if (bootstrap.isPending) body = <Loading what="gatepool" />;
  else if (bootstrap.data && !bootstrap.data.bootstrapped) body = <Setup />;
  else if (me.isPending) body = <Loading what="your session" />;
  // Data from before the 401 means this tab was signed in: say why it no longer is.
  else if (sessionEnded)
    body = <SignIn sessionEnded={!!me.data} why={explained(me.error as ApiError)} />;
  // A failed refetch keeps the page that was loaded; only a first load has nothing to show.
  else if (me.error && !me.data)
    body = (
      <div className="p-6">
        <ErrorText error={me.error} />
      </div>
    );
  else if (choosePassword && me.data) body = <ChoosePassword me={me.data} />;
  else
    body = (
      <Tooltip.Provider delayDuration={200}>
        <Shell />
      </Tooltip.Provider>
    );
  return (
    <>
      {/* Above open sheets and dialogs, clear of their titles and of the page's layout. */}
      {!reachable && (
        <div
          role="status"
          className="fixed right-4 bottom-4 z-[60] max-w-md rounded-md border border-amber-300 bg-amber-50 px-4 py-2 text-sm text-amber-900 shadow-lg"
        >
          The platform is unreachable — retrying every 5 s. The page shows what was last loaded.
        </div>
      )}
      {body}
    </>
  );
}

/**
 * When the organization of the session changes (switched here or in another tab, signed in
 * again elsewhere), nothing cached belongs to it: the page's IDs are the old organization's,
 * so go to the section's list first, then drop everything but who we are and ask again.
 */
function useFollowOrganization(organizationId: string | undefined) {
  const qc = useQueryClient();
  const router = useRouter();
  const seen = useRef<string | undefined>(undefined);
  useEffect(() => {
    if (!organizationId) return;
    const was = seen.current;
    seen.current = organizationId;
    if (!was || was === organizationId) return;
    const notMe = { predicate: (q: Query) => q.queryKey[0] !== 'me' };
    void (async () => {
      await router.navigate({ to: sectionOf(router.state.location.pathname) });
      await qc.cancelQueries(notMe);
      // Emptied first, asked again after the plan: which queries run (pools or not) depends on
      // the new organization's plan, and asking with the old one's answer would be refused.
      for (const q of qc.getQueryCache().findAll(notMe)) q.reset();
      await qc.refetchQueries({ queryKey: ['license'] });
      // The pages re-render with the new plan (notifications are batched on a timeout).
      await new Promise((r) => setTimeout(r, 0));
      await qc.refetchQueries({ ...notMe, type: 'active' });
    })();
  }, [organizationId, router, qc]);
}

/** Whether the platform answers; when it is back, everything shown is asked for again. */
function useReachable(): boolean {
  const qc = useQueryClient();
  const reachable = useSyncExternalStore(platformReachability.subscribe, platformReachability.get);
  const [wasDown, setWasDown] = useState(false);
  useEffect(() => {
    if (!reachable) setWasDown(true);
    else if (wasDown) {
      setWasDown(false);
      void qc.invalidateQueries();
    }
  }, [reachable, wasDown, qc]);
  return reachable;
}

/** The browser tab's title for a path: its section, then the product (`Gateways · gatepool`). */
export function titleOf(pathname: string): string {
  const first = '/' + (pathname.split('/').filter(Boolean)[0] ?? '');
  const section = NAV.find((n) => n.to === first);
  if (first === '/account') return 'Your account · gatepool';
  return section ? `${section.label} · gatepool` : 'gatepool';
}

/** The list page of the section `pathname` is in (`/gateways/abc` → `/gateways`). */
export function sectionOf(pathname: string): string {
  const first = '/' + (pathname.split('/').filter(Boolean)[0] ?? '');
  return NAV.find((n) => n.to === first)?.to ?? '/gateways';
}

function Shell() {
  const { data: me } = useMe();
  // Most pages need the plan: ask now, alongside the page's own data, not after it.
  useLicense();
  const qc = useQueryClient();
  const pathname = useRouterState({ select: (r) => r.location.pathname });
  const live = useLiveConnected();
  const logout = useMutation({
    mutationFn: () => unwrap(api.POST('/api/v1/auth/logout')),
    // A fresh page: nothing of the old session stays in memory or keeps polling.
    onSettled: () => {
      announceSessionChange();
      window.location.assign('/');
    },
  });
  const switchOrg = useMutation({
    mutationFn: (organizationId: string) =>
      unwrap(api.POST('/api/v1/auth/switch-organization', { body: { organizationId } })),
    // Who we are now is asked at once, here and in the other tabs; the new organization
    // then replaces whatever was cached for the old one (useFollowOrganization).
    onSuccess: async () => {
      announceSessionChange();
      await qc.invalidateQueries({ queryKey: ['me'] });
    },
  });
  const [menuOpen, setMenuOpen] = useState(false);
  const menuButton = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    document.title = titleOf(pathname);
    // Navigating closes the narrow-screen menu.
    setMenuOpen(false);
  }, [pathname]);
  useEffect(() => {
    if (!menuOpen) return;
    const onKey = (e: KeyboardEvent) => {
      if (e.key !== 'Escape') return;
      setMenuOpen(false);
      menuButton.current?.focus();
    };
    document.addEventListener('keydown', onKey);
    return () => document.removeEventListener('keydown', onKey);
  }, [menuOpen]);
  if (!me) return null;
  const orgs = me.organizations ?? [];
  return (
    <div className="min-h-screen md:flex">
      {/* The first tab stop: past the menu to the page (QA4 F-A11Y-1). */}
      <a
        href="#main-content"
        className="sr-only z-50 rounded bg-white px-3 py-2 text-sm font-medium text-indigo-800 focus:not-sr-only focus:absolute focus:top-2 focus:left-2 focus:ring-2 focus:ring-indigo-600"
      >
        Skip to content
      </a>
      {/* Narrow screens: a bar with the menu button; the menu opens below it. */}
      <header className="flex items-center justify-between border-b border-slate-200 bg-white px-3 py-2 md:hidden">
        <p className="text-lg font-semibold text-indigo-800">gatepool</p>
        <button
          ref={menuButton}
          type="button"
          aria-expanded={menuOpen}
          aria-controls="main-menu"
          className="rounded-md border border-slate-300 px-3 py-1.5 text-sm font-medium text-slate-800 hover:bg-slate-100 focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-600"
          onClick={() => setMenuOpen((o) => !o)}
        >
          <span aria-hidden className="mr-1">
            {menuOpen ? '✕' : '☰'}
          </span>
          Menu
        </button>
      </header>
      <nav
        id="main-menu"
        aria-label="Main"
        className={`${menuOpen ? 'flex' : 'hidden'} w-full flex-col gap-1 border-b border-slate-200 bg-white p-3 md:flex md:w-56 md:shrink-0 md:border-r md:border-b-0`}
      >
        <p className="hidden px-2 py-1 text-lg font-semibold text-indigo-800 md:block">gatepool</p>
        {orgs.length > 1 ? (
          <label className="px-2 text-xs text-slate-700">
            Organization
            <select
              className="mt-1 w-full rounded border border-slate-300 bg-white p-1 text-sm"
              value={me.organization.id}
              onChange={(e) => switchOrg.mutate(e.target.value)}
            >
              {orgs.map((o) => (
                <option key={o.id} value={o.id}>
                  {o.name}
                </option>
              ))}
            </select>
          </label>
        ) : (
          <p className="px-2 text-xs [overflow-wrap:anywhere] text-slate-700">
            {me.organization.name}
          </p>
        )}
        <ErrorText error={switchOrg.error} />
        <ul className="mt-3 flex flex-col gap-0.5">
          {NAV.filter((n) => permission(me, n.needs[0], n.needs[1]).allowed).map((n) => (
            <li key={n.to}>
              <Link
                to={n.to}
                className="block rounded px-2 py-1.5 text-sm text-slate-800 hover:bg-slate-100"
                activeProps={{ className: 'bg-indigo-50 font-semibold text-indigo-900' }}
                onClick={() => setMenuOpen(false)}
              >
                {n.label}
              </Link>
            </li>
          ))}
        </ul>
        <div className="mt-auto flex flex-col gap-1 border-t border-slate-200 pt-3 text-xs text-slate-700">
          <span className="[overflow-wrap:anywhere]">
            {me.name} · {me.roleName}
          </span>
          <Link
            to="/account"
            className="self-start rounded px-2 py-1 text-sm text-slate-800 hover:bg-slate-100"
            activeProps={{ className: 'bg-indigo-50 font-semibold text-indigo-900' }}
          >
            Your account
          </Link>
          <span aria-live="polite">{liveLabel(live, me)}</span>
          <button
            type="button"
            className="mt-1 self-start rounded px-2 py-1 text-sm text-slate-800 hover:bg-slate-100"
            onClick={() => logout.mutate()}
          >
            Sign out
          </button>
        </div>
      </nav>
      <main id="main-content" tabIndex={-1} className="min-w-0 flex-1 p-3 outline-none sm:p-6">
        <Invitations />
        <WarningNotices />
        <Outlet />
      </main>
    </div>
  );
}

/** Invitations into other organizations, for the signed-in person to accept or decline. */
function Invitations() {
  const { data: me } = useMe();
  const pending = me?.pendingInvitations ?? [];
  if (!pending.length) return null;
  return (
    <section aria-label="Invitations" className="mb-4 flex flex-col gap-2">
      {pending.map((i) => (
        <InvitationRow key={i.id} invitation={i} />
      ))}
    </section>
  );
}

/** Accepting takes the code the inviting admin was given; declining does not. */
function InvitationRow({ invitation: i }: { invitation: PendingInvitation }) {
  const qc = useQueryClient();
  const [code, setCode] = useState('');
  const answer = useMutation({
    mutationFn: (accept: boolean) =>
      unwrap(
        accept
          ? api.POST('/api/v1/me/invitations/{id}/accept', {
              params: { path: { id: i.id } },
              body: { code },
            })
          : api.POST('/api/v1/me/invitations/{id}/decline', { params: { path: { id: i.id } } }),
      ),
    onSettled: () => qc.invalidateQueries({ queryKey: ['me'] }),
  });
  return (
    <div className="rounded-md border border-indigo-200 bg-indigo-50 px-3 py-2 text-sm">
      <Form onSubmit={() => answer.mutateAsync(true)} className="flex flex-wrap items-center gap-2">
        <span className="mr-auto">
          You are invited to <strong>{i.organization.name}</strong> as {i.role}
          {i.invitedBy ? ` by ${i.invitedBy}` : ''}.
        </span>
        <Input
          aria-label={`Invitation code for ${i.organization.name}`}
          placeholder="Invitation code"
          required
          value={code}
          onChange={(e) => setCode(e.target.value)}
        />
        <Button small type="submit" tone="primary" disabled={answer.isPending}>
          Accept
        </Button>
        <Button small onClick={() => answer.mutate(false)} disabled={answer.isPending}>
          Decline
        </Button>
      </Form>
      <ErrorText error={answer.error} />
    </div>
  );
}
