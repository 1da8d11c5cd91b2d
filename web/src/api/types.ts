/**
 * What the UI reads from the API, taken from the generated OpenAPI types (schema.d.ts), so a
 * change in an answer's shape fails the UI's typecheck. Health words are the server's
 * (DESIGN §4); the UI shows them and never derives its own.
 */
import type { operations } from './schema';

/** The JSON body of an operation's `code` answer. */
type Body<Op extends keyof operations, Code extends number = 200> =
  operations[Op]['responses'] extends Record<Code, { content: { 'application/json': infer T } }>
    ? T
    : never;
type ItemOf<Op extends keyof operations> = Body<Op> extends { items: (infer I)[] } ? I : never;

export interface Page<T> {
  items: T[];
  nextCursor?: string | null;
}

export type PoolDetail = Body<'getGatewayPool'>;
export type PoolMember = PoolDetail['members'][number];
export type Pool = ItemOf<'listGatewayPools'>;
export type PoolHealth = Pool['health'];
/** A gateway's own health, or `degraded` for a pool member failing the pool's check. */
export type GatewayHealth = PoolMember['health'];
/** A gateway row: the API's view, plus the pools it is in (gathered from the pools). */
export type Gateway = Omit<Body<'getGateway'>, 'health'> & {
  health: GatewayHealth;
  pools?: { id: string; name: string }[];
};
export type HealthCheckResult = Body<'checkGatewayHealth'>;
export type Consumer = ItemOf<'listGatewayPoolResources'>;
export type ConnectedResources = Body<'listGatewayPoolResources'>;
export type Me = Body<'getMe'>;
export type PendingInvitation = Me['pendingInvitations'][number];
export type Invitation = ItemOf<'listInvitations'>;
export type InvitedUser = Body<'inviteUser', 201>;
export type LicenseView = Body<'getLicense'>;
export type EnrollmentToken = ItemOf<'listEnrollmentTokens'>;
export type CreatedEnrollmentToken = Body<'createEnrollmentToken', 201>;
export type AuditEntry = ItemOf<'listAuditLogs'>;
export type Identity = ItemOf<'listIdentities'>;
export type IdentityToken = ItemOf<'listIdentityTokens'>;
export type CreatedIdentityToken = Body<'createIdentityToken', 201>;
export type Member = ItemOf<'listUsers'>;
export type Role = ItemOf<'listRoles'>;
export type RolesAnswer = Body<'listRoles'>;
export type KubernetesAuthConfig = Body<'getKubernetesAuth'>;
export type KubernetesAuthSaved = Body<'createKubernetesAuth', 201>;
export type AccessTarget = ItemOf<'listAccessTargets'>;
export type Organization = Body<'getOrganization'>;
