/**
 * Kubernetes auth for machine identities (DESIGN §6): one config per identity, validated on save
 * by a TokenReview through its gateway or pool, and the login that has the cluster review a
 * workload's service-account JWT and issues an identity access token.
 * The token-reviewer JWT is stored encrypted and never leaves the platform except as the bearer
 * of a TokenReview sent over TLS verified against the config's CA.
 */
import { randomUUID } from 'node:crypto';
import type { AuditContext, AuditLog, AuditWho } from '../audit/service.js';
import type { Actor } from '../auth/actor.js';
import type { RateLimiter } from '../auth/rate-limit.js';
import { newToken } from '../auth/tokens.js';
import {
  authorizeReference,
  refOf,
  resolveReferenceNames,
  type AttachDeps,
} from '../consumers/attach.js';
import { DIRECT_TARGETS_SETTING, type DirectTargets } from '../consumers/direct-targets.js';
import type { SecretBox } from '../crypto/envelope.js';
import {
  ConflictError,
  InvalidInputError,
  NotFoundError,
  RateLimitedError,
  UnauthenticatedError,
  UnavailableError,
  UnprocessableError,
} from '../errors.js';
import { isForeignKeyViolation, isUniqueViolation } from '../http/errors.js';
import { NoGatewayAvailableError, type Attempt } from '../pools/failover.js';
import type { PoolRuntime } from '../pools/runtime.js';
import { assertCanManageHolder } from '../rbac/grant.js';
import * as q from './queries.js';
import {
  apiServerOf,
  CONFIG_FAILURES,
  decideLogin,
  judgeProbe,
  PROBE_TOKEN,
  reviewToken,
  type Connection,
  type LoginFailureReason,
  type StreamRunner,
} from './review.js';

export const DEFAULT_TTL = 3600;
export const DEFAULT_MAX_TTL = 86400;
export const TTL_ORDER_MESSAGE = 'accessTokenTtl must not exceed accessTokenMaxTtl';
/** One login's TokenReview round trip; logins are interactive, so fail fast. */
const LOGIN_REVIEW_TIMEOUT_MS = 5_000;
const SAVE_REVIEW_TIMEOUT_MS = 8_000;
/** Extra reviews after a member died mid-review (see reviewToken). */
const LOGIN_RETRIES = 2;
/** Failures that describe the path to the cluster (which a port scan would tell apart). */
const TRANSPORT_FAILURES: ReadonlySet<string> = new Set([
  'tls',
  'unreachable',
  'timeout',
  'bad_response',
]);

export interface KubernetesAuthDeps extends AttachDeps {
  box: Pick<SecretBox, 'encrypt' | 'decrypt'>;
  audit: Pick<AuditLog, 'audited' | 'record'>;
  log: { warn(obj: object, msg: string): void };
  pools: StreamRunner & Pick<PoolRuntime, 'referenceHealth'>;
  /** GATEPOOL_DIRECT_TARGETS: where the platform may connect itself (configs without a gateway). */
  directTargets: DirectTargets;
  /** Logins per client IP (GATEPOOL_K8S_LOGIN_RATE_LIMIT a minute). */
  loginLimiter: RateLimiter;
}

export interface ConfigInput {
  kubernetesHost: string;
  caCert?: string | null;
  tokenReviewerJwt?: string | null;
  allowedNamespaces?: string[];
  allowedNames?: string[];
  allowedAudience?: string | null;
  accessTokenTtl?: number;
  accessTokenMaxTtl?: number;
  gatewayId?: string | null;
  gatewayPoolId?: string | null;
}
/** Omitted keeps a field; null clears gatewayId / gatewayPoolId / tokenReviewerJwt. */
export type ConfigPatch = Partial<ConfigInput>;

export interface Validation {
  /**
   * verified: a TokenReview round trip with the reviewer credentials succeeded;
   * reachable: TLS and reachability verified, no reviewer JWT to prove permission with;
   * unverified: no healthy gateway could carry the check (saved anyway, see warnings);
   * skipped: no connection setting changed.
   */
  status: 'verified' | 'reachable' | 'unverified' | 'skipped';
  message: string;
  gatewayId: string | null;
  gatewayName: string | null;
}

export interface ConfigView {
  identityId: string;
  identityName: string;
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
  gateway: { id: string; name: string } | null;
  gatewayPool: { id: string; name: string } | null;
  createdAt: string;
  updatedAt: string;
}
export type SavedView = ConfigView & { validation: Validation; warnings: string[] };

export interface LoginResult {
  accessToken: string;
  expiresIn: number;
  accessTokenMaxTtl: number;
  tokenType: 'Bearer';
}

type DirectPath = Awaited<ReturnType<DirectTargets['check']>>;
/** The checked address of a direct path, as review options (nothing through a gateway). */
const dialOf = (path: DirectPath | null): { dialAddress?: string } =>
  path?.allowed && path.dial ? { dialAddress: path.dial } : {};
type ServedBy = { gatewayId: string | null; gatewayName: string | null; attempts: Attempt[] };
type FailureReason = LoginFailureReason | 'gateway_unavailable' | 'direct_target_not_allowed';

const CONNECTION_KEYS = [
  'kubernetesHost',
  'caCert',
  'tokenReviewerJwt',
  'gatewayId',
  'gatewayPoolId',
] as const;

export class KubernetesAuthService {
  constructor(private readonly deps: KubernetesAuthDeps) {}

  async get(actor: Actor, identityId: string): Promise<ConfigView> {
    const identity = await q.findIdentity(this.deps.db, actor.orgId, identityId);
    return this.view(await q.findConfig(this.deps.db, actor.orgId, identity.id), identity.name);
  }

  async create(
    actor: Actor,
    who: AuditWho,
    identityId: string,
    input: ConfigInput,
  ): Promise<SavedView> {
    const { db, box } = this.deps;
    const identity = await this.manageable(actor, identityId);
    const refs = await resolveReferenceNames(db, actor, {
      gatewayId: input.gatewayId ?? null,
      gatewayPoolId: input.gatewayPoolId ?? null,
    });
    const conn: Connection = {
      kubernetesHost: input.kubernetesHost,
      caCert: input.caCert ?? '',
      ...refs,
    };
    await authorizeReference(this.deps, actor, null, refOf(conn));
    if (await q.configExists(db, actor.orgId, identity.id)) throw alreadyConfigured(identity.name);
    const reviewerJwt = input.tokenReviewerJwt ?? null;
    const { validation, warnings } = await this.validate(actor, conn, reviewerJwt);
    const accessTokenTtl = input.accessTokenTtl ?? DEFAULT_TTL;
    await this.write(identity.name, () =>
      this.deps.audit.audited(
        who,
        'kubernetes-auth.create',
        (tx) =>
          q.insertConfig(tx, {
            identityId: identity.id,
            orgId: actor.orgId,
            ...conn,
            tokenReviewerJwtEnc: reviewerJwt === null ? null : box.encrypt(reviewerJwt),
            allowedNamespaces: input.allowedNamespaces ?? [],
            allowedNames: input.allowedNames ?? [],
            allowedAudience: input.allowedAudience ?? '',
            accessTokenTtl,
            accessTokenMaxTtl: input.accessTokenMaxTtl ?? Math.max(DEFAULT_MAX_TTL, accessTokenTtl),
          }),
        {
          identityId: identity.id,
          identityName: identity.name,
          kubernetesHost: conn.kubernetesHost,
          gatewayId: conn.gatewayId,
          gatewayPoolId: conn.gatewayPoolId,
          reviewerJwtSet: reviewerJwt !== null,
          validation: validation.status,
        },
      ),
    );
    const row = await q.findConfig(db, actor.orgId, identity.id);
    return { ...(await this.view(row, identity.name)), validation, warnings };
  }

  async update(
    actor: Actor,
    who: AuditWho,
    identityId: string,
    b: ConfigPatch,
  ): Promise<SavedView> {
    const { db, box } = this.deps;
    const identity = await this.manageable(actor, identityId);
    const before = await q.findConfig(db, actor.orgId, identity.id);
    const given = await resolveReferenceNames(db, actor, {
      gatewayId: b.gatewayId,
      gatewayPoolId: b.gatewayPoolId,
    });
    // Setting one reference replaces the other (a config has at most one).
    let gatewayId = given.gatewayId === undefined ? before.gatewayId : given.gatewayId;
    let gatewayPoolId =
      given.gatewayPoolId === undefined ? before.gatewayPoolId : given.gatewayPoolId;
    if (given.gatewayPoolId && given.gatewayId === undefined) gatewayId = null;
    if (given.gatewayId && given.gatewayPoolId === undefined) gatewayPoolId = null;
    const conn: Connection = {
      kubernetesHost: b.kubernetesHost ?? before.kubernetesHost,
      caCert: b.caCert === undefined ? before.caCert : (b.caCert ?? ''),
      gatewayId,
      gatewayPoolId,
    };
    const accessTokenTtl = b.accessTokenTtl ?? before.accessTokenTtl;
    const accessTokenMaxTtl = b.accessTokenMaxTtl ?? before.accessTokenMaxTtl;
    if (accessTokenTtl > accessTokenMaxTtl) {
      throw new InvalidInputError(
        `Invalid request: body.accessTokenTtl: ${TTL_ORDER_MESSAGE} (${accessTokenTtl} > ${accessTokenMaxTtl})`,
        { fields: [{ field: 'body.accessTokenTtl', message: TTL_ORDER_MESSAGE }] },
        'validation_failed',
      );
    }
    await authorizeReference(this.deps, actor, refOf(before), refOf(conn));
    const reviewerJwt =
      b.tokenReviewerJwt === undefined
        ? before.tokenReviewerJwtEnc
          ? box.decrypt(before.tokenReviewerJwtEnc)
          : null
        : b.tokenReviewerJwt;
    const connectionTouched = CONNECTION_KEYS.some((k) => k in b);
    const { validation, warnings } = connectionTouched
      ? await this.validate(actor, conn, reviewerJwt)
      : {
          validation: {
            status: 'skipped' as const,
            message: 'No connection setting changed.',
            gatewayId: null,
            gatewayName: null,
          },
          warnings: [],
        };
    await this.write(identity.name, () =>
      this.deps.audit.audited(
        who,
        'kubernetes-auth.update',
        (tx) =>
          q.updateConfig(tx, actor.orgId, identity.id, {
            ...conn,
            ...(b.tokenReviewerJwt === undefined
              ? {}
              : {
                  tokenReviewerJwtEnc:
                    b.tokenReviewerJwt === null ? null : box.encrypt(b.tokenReviewerJwt),
                }),
            ...(b.allowedNamespaces ? { allowedNamespaces: b.allowedNamespaces } : {}),
            ...(b.allowedNames ? { allowedNames: b.allowedNames } : {}),
            ...(b.allowedAudience === undefined
              ? {}
              : { allowedAudience: b.allowedAudience ?? '' }),
            accessTokenTtl,
            accessTokenMaxTtl,
          }),
        {
          identityId: identity.id,
          identityName: identity.name,
          changed: Object.keys(b).filter((k) => k !== 'tokenReviewerJwt'),
          reviewerJwtChanged: b.tokenReviewerJwt !== undefined,
          gatewayId: conn.gatewayId,
          gatewayPoolId: conn.gatewayPoolId,
          validation: validation.status,
        },
      ),
    );
    const row = await q.findConfig(db, actor.orgId, identity.id);
    return { ...(await this.view(row, identity.name)), validation, warnings };
  }

  async remove(actor: Actor, who: AuditWho, identityId: string): Promise<void> {
    const identity = await this.manageable(actor, identityId);
    await this.deps.audit.audited(
      who,
      'kubernetes-auth.delete',
      (tx) => q.deleteConfig(tx, actor.orgId, identity.id),
      { identityId: identity.id, identityName: identity.name },
    );
  }

  /**
   * Logs a workload in: the cluster reviews its JWT (through the config's gateway or pool, or
   * directly when the operator allows that target), the allow-lists decide, and an identity
   * access token is issued. Every refusal is audited in the identity's org.
   */
  async login(
    input: { identityId: string; jwt: string },
    client: { ip: string; userAgent: string | null },
  ): Promise<LoginResult> {
    const { db, box, log } = this.deps;
    const wait = this.deps.loginLimiter.hit(`k8s-login:${client.ip}`);
    if (wait)
      throw new RateLimitedError(
        `Too many Kubernetes logins from this address; try again in ${wait} s.`,
        wait,
      );
    const { identityId, jwt } = input;
    const found = await q.loginTarget(db, identityId);
    const cfg = found?.config;
    if (!found || !cfg) {
      if (found)
        await this.recordFailure(
          { orgId: found.orgId, ...client },
          identityId,
          found.identityName,
          'not_configured',
          'no Kubernetes auth is configured',
          null,
          null,
        );
      throw loginFailed('not_configured', 'this identity has no Kubernetes auth configured');
    }
    const where: AuditContext = { orgId: cfg.orgId, ...client };
    const direct = !cfg.gatewayId && !cfg.gatewayPoolId;
    const path = direct ? await this.directPath(cfg.kubernetesHost) : null;
    if (path && !path.allowed) {
      await this.recordFailure(
        where,
        identityId,
        found.identityName,
        'direct_target_not_allowed',
        `${DIRECT_TARGETS_SETTING} does not allow the platform to connect to ${cfg.kubernetesHost}`,
        cfg,
        null,
      );
      throw clusterUnavailable();
    }
    const reviewerJwt = cfg.tokenReviewerJwtEnc ? box.decrypt(cfg.tokenReviewerJwtEnc) : null;
    let outcome;
    try {
      outcome = await reviewToken(this.deps.pools, cfg.orgId, cfg, {
        ...dialOf(path),
        token: jwt,
        bearerToken: reviewerJwt ?? jwt,
        audiences: cfg.allowedAudience ? [cfg.allowedAudience] : [],
        timeoutMs: LOGIN_REVIEW_TIMEOUT_MS,
        retries: LOGIN_RETRIES,
      });
    } catch (err) {
      if (!(err instanceof NoGatewayAvailableError)) throw err;
      await this.recordFailure(
        where,
        identityId,
        found.identityName,
        'gateway_unavailable',
        err.message,
        cfg,
        { gatewayId: null, gatewayName: null, attempts: err.attempts },
      );
      log.warn(
        { identityId, attempts: err.attempts.length },
        `kubernetes login failed: ${err.message}`,
      );
      throw new UnavailableError(
        // "Try again" only after members were tried and failed: a pool with no members or
        // none healthy needs a person, not a retry, and the message says what each one lacks.
        `Kubernetes login could not reach the cluster: ${err.message}.${err.attempts.length ? ' Try again shortly.' : ''}`,
        { reason: 'gateway_unavailable', attempts: err.attempts },
        'gateway_unavailable',
      );
    }
    const decision = decideLogin(outcome.result, cfg);
    if (!decision.ok) {
      await this.recordFailure(
        where,
        identityId,
        found.identityName,
        decision.reason,
        decision.message,
        cfg,
        outcome,
      );
      if (CONFIG_FAILURES.has(decision.reason)) {
        log.warn(
          { identityId, reason: decision.reason, gateway: outcome.gatewayName },
          `kubernetes login failed: ${decision.message}`,
        );
      }
      // The caller is not authenticated: a direct path's transport details (refused vs. TLS
      // vs. timeout) would map the platform's network for it. The audit entry keeps them.
      if (direct && TRANSPORT_FAILURES.has(decision.reason))
        throw loginFailed(decision.reason, 'the cluster could not be reached');
      throw loginFailed(decision.reason, decision.message);
    }
    const { token, hash } = newToken('identity');
    const tokenId = randomUUID();
    const expiresIn = cfg.accessTokenTtl;
    await this.deps.audit.audited(
      {
        actor: { type: 'identity', id: identityId, name: found.identityName },
        ...where,
      },
      'kubernetes-auth.login',
      (tx) =>
        q.insertAccessToken(tx, {
          id: tokenId,
          orgId: cfg.orgId,
          identityId,
          name: `kubernetes-auth ${decision.namespace}/${decision.name}`.slice(0, 128),
          tokenHash: hash,
          expiresAt: new Date(Date.now() + expiresIn * 1000),
        }),
      {
        identityId,
        identityName: found.identityName,
        serviceAccount: decision.user.username,
        namespace: decision.namespace,
        serviceAccountName: decision.name,
        serviceAccountUid: decision.user.uid,
        accessTokenId: tokenId,
        ...servedBy(cfg, outcome),
      },
    );
    return {
      accessToken: token,
      expiresIn,
      accessTokenMaxTtl: cfg.accessTokenMaxTtl,
      tokenType: 'Bearer',
    };
  }

  /** The identity, if the caller may configure its logins (that mints its credentials). */
  private async manageable(actor: Actor, identityId: string): Promise<q.IdentityRow> {
    const identity = await q.findIdentity(this.deps.db, actor.orgId, identityId);
    await assertCanManageHolder(this.deps.db, actor, identity, 'identity');
    return identity;
  }

  /** Whether (and where) the platform may connect to the API server itself. */
  private directPath(kubernetesHost: string): Promise<DirectPath> {
    const server = apiServerOf(kubernetesHost);
    return this.deps.directTargets.check(server.host, server.port);
  }

  private async view(row: q.ConfigRow, identityName: string): Promise<ConfigView> {
    return {
      identityId: row.identityId,
      identityName,
      kubernetesHost: row.kubernetesHost,
      caCert: row.caCert || null,
      tokenReviewerJwtSet: row.tokenReviewerJwtEnc !== null,
      allowedNamespaces: row.allowedNamespaces,
      allowedNames: row.allowedNames,
      allowedAudience: row.allowedAudience || null,
      accessTokenTtl: row.accessTokenTtl,
      accessTokenMaxTtl: row.accessTokenMaxTtl,
      gatewayId: row.gatewayId,
      gatewayPoolId: row.gatewayPoolId,
      ...(await q.referenceNames(this.deps.db, row)),
      createdAt: row.createdAt.toISOString(),
      updatedAt: row.updatedAt.toISOString(),
    };
  }

  /**
   * Save-time check: a TokenReview round trip through the chosen path. No healthy member (or
   * members failing only in transport) → save with a warning; the cluster unreachable,
   * untrusted or refusing the reviewer through a working gateway → 422 with the reason.
   */
  private async validate(
    actor: Actor,
    conn: Connection,
    reviewerJwt: string | null,
  ): Promise<{ validation: Validation; warnings: string[] }> {
    const { orgId } = actor;
    const host = conn.kubernetesHost;
    const ref = refOf(conn);
    const path = ref ? null : await this.directPath(host);
    if (path && !path.allowed) {
      throw new UnprocessableError(
        `The platform may not connect to ${host} directly: the operator has not allowed this target in ${DIRECT_TARGETS_SETTING} (a name matched only by a wildcard must resolve, and not to a loopback or link-local address). Attach a gateway or gateway pool instead (gatewayId or gatewayPoolId).`,
        { reason: 'direct_target_not_allowed', setting: DIRECT_TARGETS_SETTING },
        'direct_target_not_allowed',
      );
    }
    const unverified = (why: string) => {
      const message = `Saved without verifying the connection to ${host}: ${why}. Logins fail until it is reachable.`;
      this.deps.log.warn(
        {
          orgId,
          kubernetesHost: host,
          gatewayId: conn.gatewayId,
          gatewayPoolId: conn.gatewayPoolId,
        },
        `kubernetes auth saved unverified: ${why}`,
      );
      return {
        validation: { status: 'unverified' as const, message, gatewayId: null, gatewayName: null },
        warnings: [message],
      };
    };
    if (ref) {
      const health = await this.deps.pools.referenceHealth(orgId, ref);
      if (!health.usable) return unverified(health.message);
    }
    let outcome;
    try {
      outcome = await reviewToken(this.deps.pools, orgId, conn, {
        ...dialOf(path),
        token: PROBE_TOKEN,
        bearerToken: reviewerJwt,
        audiences: [],
        timeoutMs: SAVE_REVIEW_TIMEOUT_MS,
        retries: 1,
      });
    } catch (err) {
      if (!(err instanceof NoGatewayAvailableError)) throw err;
      // A gateway that answered "target unreachable" or "not allowed" is a working gateway
      // telling us about the cluster; anything else is the path being down.
      const answered = err.attempts.filter(
        (a) => a.reason === 'unreachable' || a.reason === 'refused',
      );
      if (!answered.length) return unverified(err.message);
      throw new UnprocessableError(`Cannot reach the Kubernetes API at ${host}: ${err.message}`, {
        reason: answered.some((a) => a.reason === 'refused') ? 'gateway_refused' : 'unreachable',
        attempts: err.attempts,
      });
    }
    const verdict = judgeProbe(outcome.result, reviewerJwt !== null);
    const via = outcome.gatewayName ? ` through gateway "${outcome.gatewayName}"` : '';
    if (verdict.status === 'failed') {
      // From the platform's own network, only administrators learn how a target failed:
      // refused vs. TLS vs. timeout would otherwise make every save a port probe.
      const hidden =
        !ref && TRANSPORT_FAILURES.has(verdict.reason) && !actor.ability.can('edit', 'Settings');
      throw new UnprocessableError(
        hidden
          ? `Kubernetes API at ${host} failed the TokenReview check: the platform could not complete a TokenReview with it (an administrator can see why).`
          : `Kubernetes API at ${host} failed the TokenReview check${via}: ${verdict.message}`,
        {
          reason: hidden ? 'direct_connection_failed' : verdict.reason,
          gatewayId: outcome.gatewayId,
          gatewayName: outcome.gatewayName,
        },
      );
    }
    return {
      validation: {
        status: verdict.status,
        message: verdict.message + (via ? ` (checked${via})` : ''),
        gatewayId: outcome.gatewayId,
        gatewayName: outcome.gatewayName,
      },
      warnings: [],
    };
  }

  /** Runs a config write, naming what a race with another save or a deletion means. */
  private async write(identityName: string, change: () => Promise<unknown>): Promise<void> {
    try {
      await change();
    } catch (err) {
      if (isUniqueViolation(err)) throw alreadyConfigured(identityName);
      // The gateway or pool was deleted between the checks and the write.
      if (isForeignKeyViolation(err)) throw new NotFoundError('Gateway or gateway pool');
      throw err;
    }
  }

  private async recordFailure(
    where: AuditContext,
    identityId: string,
    identityName: string,
    reason: FailureReason,
    message: string,
    conn: Connection | null,
    outcome: ServedBy | null,
  ): Promise<void> {
    await this.deps.audit.record(
      { type: 'anonymous', name: `kubernetes login as ${identityName}` },
      'kubernetes-auth.login-failed',
      { identityId, identityName, reason, message, ...(conn ? servedBy(conn, outcome) : {}) },
      where,
    );
  }
}

/** Which path served a review, for audit entries. */
function servedBy(cfg: Connection, outcome: ServedBy | null) {
  return {
    via: cfg.gatewayPoolId ? 'gateway-pool' : cfg.gatewayId ? 'gateway' : 'direct',
    gatewayPoolId: cfg.gatewayPoolId,
    gatewayId: outcome?.gatewayId ?? null,
    gateway: outcome?.gatewayName ?? null,
    failovers: outcome?.attempts.length ?? 0,
  };
}

const alreadyConfigured = (identityName: string) =>
  new ConflictError(
    `Identity "${identityName}" already has Kubernetes auth; change it with PATCH.`,
  );

function loginFailed(reason: LoginFailureReason, message: string): UnauthenticatedError {
  return new UnauthenticatedError(`Kubernetes login failed (${reason}): ${message}.`, { reason });
}

/** Deliberately generic: the caller is unauthenticated; the audit entry says what happened. */
const clusterUnavailable = () =>
  new UnavailableError(
    'Kubernetes login could not reach the cluster. Try again shortly.',
    { reason: 'cluster_unavailable' },
    'cluster_unavailable',
  );
