/**
 * The permission vocabulary: which actions exist for which subject, and what the built-in
 * roles may do. Pure data; `ability.ts` turns it into a CASL ability.
 *
 * Only subjects of features that exist: the role editor offers every one of them. A feature
 * brings its subject with it (DESIGN §6's dynamic secrets will add `DynamicSecret`); a stored
 * permission whose subject is not here is ignored (roles-resolver.ts), never an error.
 */
export const SUBJECT_ACTIONS = {
  Member: ['read', 'create', 'edit', 'delete'],
  Identity: ['read', 'create', 'edit', 'delete'],
  Role: ['read', 'create', 'edit', 'delete'],
  Settings: ['read', 'edit'],
  AuditLog: ['read'],
  License: ['read', 'edit'],
  Gateway: ['read', 'edit', 'delete', 'attach'],
  EnrollmentToken: ['read', 'create', 'delete'],
  GatewayPool: ['list', 'create', 'edit', 'delete', 'attach'],
  KubernetesAuth: ['read', 'create', 'edit', 'delete'],
  AccessTarget: ['list', 'create', 'edit', 'delete', 'connect'],
} as const;

export type Subject = keyof typeof SUBJECT_ACTIONS;
export type Action = (typeof SUBJECT_ACTIONS)[Subject][number];
/** `targets`: only on AccessTarget list/connect of custom roles, names or globs (rbac/targets.ts). */
export type Permission = { subject: Subject; action: Action; targets?: string[] };

export const SUBJECTS = Object.keys(SUBJECT_ACTIONS) as Subject[];

/** The actions of a subject, or undefined for an unknown one ("toString" is not a subject). */
export function actionsOf(subject: string): readonly string[] | undefined {
  return Object.hasOwn(SUBJECT_ACTIONS, subject)
    ? (SUBJECT_ACTIONS as Record<string, readonly string[]>)[subject]
    : undefined;
}

export function isValidPermission(p: { subject: string; action: string }): p is Permission {
  return actionsOf(p.subject)?.includes(p.action) ?? false;
}

const all = (subject: Subject): Permission[] =>
  SUBJECT_ACTIONS[subject].map((action) => ({ subject, action }));
const some = (subject: Subject, ...actions: Action[]): Permission[] =>
  actions.map((action) => ({ subject, action }));

/** Read-only view of everything but the audit log (which can hold personal data). */
const VIEWER: Permission[] = [
  ...some('Member', 'read'),
  ...some('Identity', 'read'),
  ...some('Role', 'read'),
  ...some('Settings', 'read'),
  ...some('License', 'read'),
  ...some('Gateway', 'read'),
  ...some('EnrollmentToken', 'read'),
  ...some('GatewayPool', 'list'),
  ...some('KubernetesAuth', 'read'),
  ...some('AccessTarget', 'list'),
];

/**
 * Builds and uses things; does not administer people, roles, policy, license or infrastructure.
 * Nor machine identities: their tokens are credentials that outlive a person's membership, so
 * minting them is an admin matter (a custom role may still grant Identity:create/edit/delete).
 * Kubernetes auth is the same matter: a login configuration lets whoever holds a service
 * account token of the named cluster (one the configurer may run) mint tokens for the
 * identity, after the configurer has left (a custom role may grant KubernetesAuth:create/…).
 */
const MEMBER: Permission[] = [
  ...VIEWER,
  ...some('Gateway', 'attach'),
  ...some('GatewayPool', 'attach'),
  ...some('AccessTarget', 'connect'),
];

const ADMIN: Permission[] = SUBJECTS.flatMap(all);

export const BUILT_IN_ROLES = {
  admin: { name: 'Admin', description: 'Full access to the organization.', permissions: ADMIN },
  member: {
    name: 'Member',
    description:
      'Uses gateways, pools and access targets; no administration (people, identities, Kubernetes auth, roles, settings).',
    permissions: MEMBER,
  },
  viewer: { name: 'Viewer', description: 'Read-only access (no audit log).', permissions: VIEWER },
} as const;

export type BuiltInRole = keyof typeof BUILT_IN_ROLES;
// Own keys only: a custom slug such as "constructor" is not built in.
export const isBuiltInRole = (slug: string): slug is BuiltInRole =>
  Object.hasOwn(BUILT_IN_ROLES, slug);
