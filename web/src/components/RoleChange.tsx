import { useState } from 'react';
import type { Me, Role } from '../api/types';
import { useMe } from '../lib/session';
import { ConfirmButton } from './Dialogs';
import { Button } from './ui';

/**
 * Whether `me` holds every permission of `role` (the server's rule: you grant only roles whose
 * permissions you hold, and manage only members whose role's permissions you hold). A
 * permission limited to some access targets counts as held when its subject and action are:
 * the platform has the last word on the limit.
 */
export function rolePermissionsHeld(me: Me | undefined, role: Role | undefined): boolean {
  if (!me || !role) return false;
  const mine = new Set(me.permissions.map((p) => `${p.subject}:${p.action}`));
  return role.permissions.every((p) => mine.has(`${p.subject}:${p.action}`));
}

/**
 * A member's (or an identity's) role, changed only on purpose: choosing in the select picks a new role (arrow
 * keys only move the choice), and a Save button asks "Change … from X to Y?" before anything
 * is sent. Roles the caller cannot grant are disabled; a member whose role the caller cannot
 * manage has the select disabled, with the reason. Shared by Members and the identity page.
 */
export function RoleChange({
  who,
  current: currentSlug,
  self = false,
  roles,
  canEdit,
  onSave,
}: {
  /** The member's e-mail or the identity's name. */
  who: string;
  /** The slug of the role held now. */
  current: string;
  self?: boolean;
  roles: Role[];
  canEdit: { allowed: boolean; reason: string };
  onSave: (role: string) => Promise<unknown>;
}) {
  const { data: me } = useMe();
  const heldByMe = (r: Role) => rolePermissionsHeld(me, r);
  const member = { role: currentSlug, email: who };
  const [draft, setDraft] = useState(member.role);
  // The saved role changed (this save, another admin): start from it again.
  const [saved, setSaved] = useState(member.role);
  if (saved !== member.role) {
    setSaved(member.role);
    setDraft(member.role);
  }
  const current = roles.find((r) => r.slug === member.role);
  const next = roles.find((r) => r.slug === draft);
  const nameOf = (slug: string) => roles.find((r) => r.slug === slug)?.name ?? slug;
  const manageable = !current || heldByMe(current);
  const disabledReason = !canEdit.allowed
    ? canEdit.reason
    : !manageable
      ? `You cannot change this role: “${nameOf(member.role)}” has permissions you don't hold.`
      : undefined;
  const changed = draft !== member.role;
  return (
    <div className="flex flex-wrap items-center gap-2">
      <select
        aria-label={`Role of ${member.email}`}
        className="max-w-48 rounded border border-slate-300 bg-white p-1 text-sm"
        value={draft}
        disabled={!!disabledReason}
        title={disabledReason}
        onChange={(e) => setDraft(e.target.value)}
      >
        {roles.map((r) => {
          const grantable = heldByMe(r);
          return (
            <option key={r.slug} value={r.slug} disabled={!grantable && r.slug !== member.role}>
              {grantable || r.slug === member.role
                ? r.name
                : `${r.name} (has permissions you don't hold)`}
            </option>
          );
        })}
      </select>
      {self && <span className="text-xs text-slate-600">(you)</span>}
      {changed && (
        <>
          <ConfirmButton
            label="Save"
            tone="secondary"
            confirmLabel="Change role"
            title={`Change the role of ${member.email}?`}
            body={
              <p>
                Change {member.email} from <strong>{nameOf(member.role)}</strong> to{' '}
                <strong>{next?.name ?? draft}</strong>?
                {self && ' This is your own role: you may lose access to this page.'}
              </p>
            }
            onConfirm={() => onSave(draft)}
          />
          <Button small onClick={() => setDraft(member.role)}>
            Undo
          </Button>
        </>
      )}
    </div>
  );
}
