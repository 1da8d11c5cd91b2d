import type { ReactNode } from 'react';
import { permission, useMe } from '../lib/session';
import { Empty } from './ui';

/**
 * A page opened by URL (a bookmark, a shared link) by a role that may not read what it shows:
 * one neutral "You don't have access" notice naming the missing permission, as the audit log
 * has, instead of the API's raw 403 under forms the role cannot use either.
 */
export function PageGate({
  title,
  what,
  subject,
  action = 'read',
  children,
}: {
  title: string;
  /** What the page lists, for "You don't have access to …". */
  what: string;
  subject: string;
  action?: string;
  children: ReactNode;
}) {
  const { data: me } = useMe();
  if (!me) return null;
  const can = permission(me, action, subject);
  if (can.allowed) return children;
  return (
    <div className="flex flex-col gap-3">
      <h1 className="text-2xl font-semibold">{title}</h1>
      <Empty title={`You don't have access to ${what}`}>{can.reason}</Empty>
    </div>
  );
}

/** The same inside a page: one section the role may not read says so, once, in grey. */
export function NoAccessNote({ reason }: { reason: string }) {
  return (
    <p className="text-sm text-slate-600" data-testid="no-access">
      {reason}
    </p>
  );
}
