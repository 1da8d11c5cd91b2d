import {
  bigint,
  boolean,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uuid,
} from 'drizzle-orm/pg-core';

/** Row shapes for drizzle. The SQL in ./migrations is the source of truth; keep both in step. */
// Migrations declare timestamptz(3): milliseconds, what a JavaScript Date holds.
const ts = (name: string) => timestamp(name, { withTimezone: true, mode: 'date', precision: 3 });

export const organizations = pgTable('organizations', {
  id: uuid('id').primaryKey(),
  name: text('name').notNull(),
  requireGatewayPools: boolean('require_gateway_pools').notNull().default(false),
  licenseKey: text('license_key'),
  createdAt: ts('created_at').notNull().defaultNow(),
  updatedAt: ts('updated_at').notNull().defaultNow(),
});

export const users = pgTable('users', {
  id: uuid('id').primaryKey(),
  email: text('email').notNull().unique(),
  name: text('name').notNull(),
  passwordHash: text('password_hash').notNull(),
  /** Set by someone else (an inviting admin, the operator): only changing it is allowed (0010). */
  passwordChangeRequired: boolean('password_change_required').notNull().default(false),
  createdAt: ts('created_at').notNull().defaultNow(),
});

export type PermissionRow = { subject: string; action: string; targets?: string[] };

export const roles = pgTable('roles', {
  id: uuid('id').primaryKey(),
  orgId: uuid('org_id').notNull(),
  slug: text('slug').notNull(),
  name: text('name').notNull(),
  description: text('description').notNull().default(''),
  permissions: jsonb('permissions').$type<PermissionRow[]>().notNull().default([]),
  createdAt: ts('created_at').notNull().defaultNow(),
  updatedAt: ts('updated_at').notNull().defaultNow(),
});

export const orgMemberships = pgTable(
  'org_memberships',
  {
    orgId: uuid('org_id').notNull(),
    userId: uuid('user_id').notNull(),
    role: text('role').notNull(),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.orgId, t.userId] })],
);

export const sessions = pgTable('sessions', {
  id: uuid('id').primaryKey(),
  tokenHash: text('token_hash').notNull(),
  userId: uuid('user_id').notNull(),
  orgId: uuid('org_id').notNull(),
  ip: text('ip'),
  userAgent: text('user_agent'),
  createdAt: ts('created_at').notNull().defaultNow(),
  expiresAt: ts('expires_at').notNull(),
  revokedAt: ts('revoked_at'),
});

/** Why a session ended where its row cannot say (removed member, changed password), 0009. */
export const sessionEndings = pgTable('session_endings', {
  tokenHash: text('token_hash').primaryKey(),
  orgId: uuid('org_id').notNull(),
  orgName: text('org_name').notNull(),
  reason: text('reason').notNull(),
  endedAt: ts('ended_at').notNull().defaultNow(),
  expiresAt: ts('expires_at').notNull(),
});

export const identities = pgTable('identities', {
  id: uuid('id').primaryKey(),
  orgId: uuid('org_id').notNull(),
  name: text('name').notNull(),
  role: text('role').notNull(),
  createdAt: ts('created_at').notNull().defaultNow(),
  updatedAt: ts('updated_at').notNull().defaultNow(),
  // Who made it (migration 0007); null for identities made before.
  createdByType: text('created_by_type'),
  createdById: text('created_by_id'),
  createdByName: text('created_by_name'),
});

export const identityAccessTokens = pgTable('identity_access_tokens', {
  id: uuid('id').primaryKey(),
  orgId: uuid('org_id').notNull(),
  identityId: uuid('identity_id').notNull(),
  name: text('name').notNull().default(''),
  tokenHash: text('token_hash').notNull(),
  createdAt: ts('created_at').notNull().defaultNow(),
  expiresAt: ts('expires_at'),
  revokedAt: ts('revoked_at'),
  lastUsedAt: ts('last_used_at'),
});

export const auditLogs = pgTable('audit_logs', {
  id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
  orgId: uuid('org_id'),
  event: text('event').notNull(),
  actorType: text('actor_type').notNull(),
  actorId: text('actor_id'),
  actorName: text('actor_name'),
  metadata: jsonb('metadata').$type<Record<string, unknown>>().notNull().default({}),
  ip: text('ip'),
  userAgent: text('user_agent'),
  createdAt: ts('created_at').notNull().defaultNow(),
});

export const platformSettings = pgTable('platform_settings', {
  key: text('key').primaryKey(),
  value: text('value').notNull(),
  updatedAt: ts('updated_at').notNull().defaultNow(),
});

export const gatewayCas = pgTable('gateway_cas', {
  orgId: uuid('org_id').primaryKey(),
  certPem: text('cert_pem').notNull(),
  keyEnc: text('key_enc').notNull(),
  createdAt: ts('created_at').notNull().defaultNow(),
});

export type PersistedGatewayStatus = 'never-connected' | 'connected' | 'disconnected';

export const gateways = pgTable('gateways', {
  id: uuid('id').primaryKey(),
  orgId: uuid('org_id').notNull(),
  name: text('name').notNull(),
  labels: jsonb('labels').$type<Record<string, string>>().notNull().default({}),
  certFingerprint: text('cert_fingerprint').notNull(),
  certExpiresAt: ts('cert_expires_at').notNull(),
  status: text('status').$type<PersistedGatewayStatus>().notNull().default('never-connected'),
  draining: boolean('draining').notNull().default(false),
  connectedAt: ts('connected_at'),
  disconnectedAt: ts('disconnected_at'),
  lastSeenAt: ts('last_seen_at'),
  version: text('version'),
  enrolledWithTokenId: uuid('enrolled_with_token_id'),
  createdAt: ts('created_at').notNull().defaultNow(),
  updatedAt: ts('updated_at').notNull().defaultNow(),
});

export const gatewayEnrollmentTokens = pgTable('gateway_enrollment_tokens', {
  id: uuid('id').primaryKey(),
  orgId: uuid('org_id').notNull(),
  name: text('name').notNull(),
  tokenHash: text('token_hash').notNull(),
  poolIds: jsonb('pool_ids').$type<string[]>().notNull().default([]),
  expiresAt: ts('expires_at').notNull(),
  usedAt: ts('used_at'),
  usedByGatewayId: uuid('used_by_gateway_id'),
  revokedAt: ts('revoked_at'),
  createdByType: text('created_by_type').notNull(),
  createdById: text('created_by_id'),
  createdAt: ts('created_at').notNull().defaultNow(),
});

export const gatewayPools = pgTable('gateway_pools', {
  id: uuid('id').primaryKey(),
  orgId: uuid('org_id').notNull(),
  name: text('name').notNull(),
  description: text('description').notNull().default(''),
  minHealthy: integer('min_healthy').notNull().default(1),
  healthCheckTarget: text('health_check_target'),
  createdAt: ts('created_at').notNull().defaultNow(),
  updatedAt: ts('updated_at').notNull().defaultNow(),
});

export const gatewayPoolMemberships = pgTable(
  'gateway_pool_memberships',
  {
    orgId: uuid('org_id').notNull(),
    poolId: uuid('pool_id').notNull(),
    gatewayId: uuid('gateway_id').notNull(),
    weight: integer('weight').notNull().default(100),
    priority: integer('priority').notNull().default(0),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.poolId, t.gatewayId] })],
);

/** One Kubernetes auth config per machine identity (migration 0004). */
export const identityKubernetesAuths = pgTable('identity_kubernetes_auths', {
  identityId: uuid('identity_id').primaryKey(),
  orgId: uuid('org_id').notNull(),
  kubernetesHost: text('kubernetes_host').notNull(),
  caCert: text('ca_cert').notNull().default(''),
  /** SecretBox envelope; null = the login JWT reviews itself. */
  tokenReviewerJwtEnc: text('token_reviewer_jwt_enc'),
  allowedNamespaces: jsonb('allowed_namespaces').$type<string[]>().notNull().default([]),
  allowedNames: jsonb('allowed_names').$type<string[]>().notNull().default([]),
  allowedAudience: text('allowed_audience').notNull().default(''),
  accessTokenTtl: integer('access_token_ttl').notNull().default(3600),
  accessTokenMaxTtl: integer('access_token_max_ttl').notNull().default(86400),
  gatewayId: uuid('gateway_id'),
  gatewayPoolId: uuid('gateway_pool_id'),
  createdAt: ts('created_at').notNull().defaultNow(),
  updatedAt: ts('updated_at').notNull().defaultNow(),
});

export const accessTargets = pgTable('access_targets', {
  id: uuid('id').primaryKey(),
  orgId: uuid('org_id').notNull(),
  name: text('name').notNull(),
  host: text('host').notNull(),
  port: integer('port').notNull(),
  protocol: text('protocol').$type<'tcp' | 'postgres' | 'http' | 'kubernetes'>().notNull(),
  description: text('description').notNull().default(''),
  gatewayId: uuid('gateway_id'),
  gatewayPoolId: uuid('gateway_pool_id'),
  createdAt: ts('created_at').notNull().defaultNow(),
  updatedAt: ts('updated_at').notNull().defaultNow(),
});

export type InvitationStatus = 'pending' | 'accepted' | 'declined' | 'revoked';

/** A pending membership the invited person accepts or declines (migration 0006). */
export const invitations = pgTable('invitations', {
  id: uuid('id').primaryKey(),
  orgId: uuid('org_id').notNull(),
  userId: uuid('user_id').notNull(),
  email: text('email').notNull(),
  role: text('role').notNull(),
  createdUser: boolean('created_user').notNull().default(false),
  codeHash: text('code_hash').notNull(),
  status: text('status').$type<InvitationStatus>().notNull().default('pending'),
  invitedByType: text('invited_by_type').notNull(),
  invitedById: text('invited_by_id'),
  invitedByName: text('invited_by_name'),
  createdAt: ts('created_at').notNull().defaultNow(),
  expiresAt: ts('expires_at').notNull(),
  respondedAt: ts('responded_at'),
});
