/**
 * What the UI reads from the API. Health words are the server's (DESIGN §4); the UI shows
 * them and never derives its own.
 */
export type GatewayHealth = 'healthy' | 'draining' | 'unreachable' | 'never-connected' | 'degraded';
export type PoolHealth = 'healthy' | 'degraded' | 'down' | 'empty';

export interface Page<T> {
  items: T[];
  nextCursor?: string | null;
}

export interface Gateway {
  id: string;
  name: string;
  health: GatewayHealth;
  lastResort: string | null;
  lastSeenAt: string | null;
  connectedSince?: string | null;
  rttMs: number | null;
  activeStreams: number;
  version?: string | null;
  labels?: Record<string, string>;
  draining?: boolean;
  remoteAddress?: string | null;
  createdAt?: string;
  pools?: { id: string; name: string }[];
  connectedResourcesCount?: number;
}

export interface PoolMember extends Gateway {
  healthReason?: string | null;
  weight: number;
  priority: number;
}

export interface Pool {
  id: string;
  name: string;
  description?: string;
  minHealthy: number;
  healthCheckTarget: string | null;
  memberCount: number;
  healthyMemberCount: number;
  health: PoolHealth;
  connectedResourcesCount: number;
  createdAt?: string;
}

export interface PoolDetail extends Pool {
  members: PoolMember[];
}

export interface Consumer {
  kind: string;
  id: string;
  name: string;
}

export interface Me {
  type: 'user' | 'identity';
  id: string;
  name: string;
  organization: { id: string; name: string };
  role: string;
  roleName: string;
  permissions: { subject: string; action: string }[];
  organizations?: { id: string; name: string; role?: string }[];
  pendingInvitations?: PendingInvitation[];
}

export interface PendingInvitation {
  id: string;
  organization: { id: string; name: string };
  role: string;
  invitedBy: string | null;
  expiresAt: string;
}

export interface Invitation {
  id: string;
  email: string;
  role: string;
  invitedBy: { type: string; id: string | null; name: string | null };
  expiresAt: string;
}

export interface LicenseView {
  plan: string;
  features?: string[];
  expiresAt: string | null;
  installed?: boolean;
  /** Why an installed license is not in force, in the server's words. */
  problem?: string | null;
}

export interface EnrollmentToken {
  id: string;
  name: string;
  expiresAt: string;
  poolIds: string[];
  usedAt?: string | null;
  revokedAt?: string | null;
  createdAt?: string;
  state?: string;
}

export interface AuditEntry {
  id: string;
  event: string;
  actor: { type: string; id: string | null; name: string | null };
  metadata: Record<string, unknown>;
  createdAt: string;
  ip?: string | null;
}

export interface Identity {
  id: string;
  name: string;
  role: string;
  createdAt?: string;
}

export interface Member {
  id: string;
  email: string;
  name: string;
  role: string;
}

export interface Role {
  id: string | null;
  slug: string;
  name: string;
  description: string;
  builtIn: boolean;
  permissions: { subject: string; action: string }[];
}

export interface KubernetesAuthConfig {
  kubernetesHost: string;
  caCert: string | null;
  tokenReviewerJwtSet: boolean;
  allowedNamespaces: string[];
  allowedNames: string[];
  allowedAudience: string | null;
  accessTokenTtl: number;
  accessTokenMaxTtl: number;
  gatewayId: string | null;
  gatewayPoolId: string | null;
  validation?: { status: string; message: string; gatewayName?: string | null };
  warnings?: string[];
}
