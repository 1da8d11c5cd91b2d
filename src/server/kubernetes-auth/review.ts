/**
 * Kubernetes auth's review logic, between the service and the TokenReview client: reaching the
 * API server directly or through a gateway / gateway pool, checking a login against the
 * allow-lists, and judging the save-time probe.
 */
import type { Duplex } from 'node:stream';
import { NotFoundError } from '../errors.js';
import { DEFAULT_MAX_ATTEMPTS, type Attempt, type FailoverOptions } from '../pools/failover.js';
import type { PoolRuntime } from '../pools/runtime.js';
import {
  parseKubernetesHost,
  tokenReview,
  type ApiServer,
  type ReviewedUser,
  type TokenReviewFailure,
  type TokenReviewParams,
  type TokenReviewResult,
} from './token-review.js';

/** Where and how the API server is reached (the connection half of a config). */
export interface Connection {
  kubernetesHost: string;
  /** PEM bundle; '' = the system CAs. */
  caCert: string;
  gatewayId: string | null;
  gatewayPoolId: string | null;
}

export interface ReviewOutcome {
  result: TokenReviewResult;
  /** The gateway that carried the review (null when the cluster was reached directly). */
  gatewayId: string | null;
  gatewayName: string | null;
  /** Members that failed before one served: failed opens and reviews cut mid-way. */
  attempts: Attempt[];
  /** TokenReview round trips made (more than one after a stream broke mid-review). */
  tries: number;
}

export interface ReviewOptions {
  token: string;
  bearerToken: string | null;
  audiences: string[];
  /** Budget of one TokenReview round trip once a stream is open. */
  timeoutMs: number;
  /** Extra round trips after a stream broke mid-review (the member died). */
  retries: number;
  /** Direct path only: the checked address to connect to (see DirectTargets.check). */
  dialAddress?: string;
}

/** The pool service surface used here. */
export type StreamRunner = Pick<PoolRuntime, 'run' | 'invalidate'>;

export function apiServerOf(kubernetesHost: string): ApiServer {
  const server = parseKubernetesHost(kubernetesHost);
  if (!server) throw new Error(`not a Kubernetes API URL: ${kubernetesHost}`);
  return server;
}

/** A review whose stream broke after the gateway's 200; thrown so the pool re-runs it. */
class ReviewInterrupted extends Error {
  constructor(
    readonly result: Extract<TokenReviewResult, { ok: false }>,
    readonly member: { gatewayId: string; gatewayName: string },
  ) {
    super(result.message);
  }
}

/**
 * One TokenReview through the configured path. Opening a stream fails over between pool
 * members inside PoolRuntime.run (nothing reached the cluster). A review whose stream broke
 * after the gateway's 200 ('unreachable') is run again on another member, up to `retries`
 * times: unlike most operations that is safe here, because a TokenReview creates nothing in the
 * cluster (it is a virtual resource, never persisted). Declaring it repeatable also lets the
 * pool cut a review stuck on a member gone quiet (~0.5 s) instead of waiting for its death.
 * Throws NoGatewayAvailableError when no member could serve.
 */
export async function reviewToken(
  pools: StreamRunner,
  orgId: string,
  conn: Connection,
  opts: ReviewOptions,
  /** The round trip itself; replaceable so tests can script what the cluster answers. */
  review: (params: TokenReviewParams) => Promise<TokenReviewResult> = tokenReview,
): Promise<ReviewOutcome> {
  const server = apiServerOf(conn.kubernetesHost);
  const params = {
    server,
    caCert: conn.caCert,
    bearerToken: opts.bearerToken,
    token: opts.token,
    audiences: opts.audiences,
    timeoutMs: opts.timeoutMs,
  };
  if (!conn.gatewayId && !conn.gatewayPoolId) {
    const result = await review({ ...params, dialAddress: opts.dialAddress });
    return { result, gatewayId: null, gatewayName: null, attempts: [], tries: 1 };
  }
  const ref = conn.gatewayPoolId
    ? { gatewayPoolId: conn.gatewayPoolId }
    : { gatewayId: conn.gatewayId as string };
  const target = { host: server.host, port: server.port };
  let tries = 0;
  const operation = async (
    stream: Duplex,
    member: { gatewayId: string; gatewayName: string },
  ): Promise<TokenReviewResult> => {
    tries += 1;
    const result = await review({ ...params, stream });
    // Past the budget the broken review is the answer; before it, the pool runs it again.
    if (!result.ok && result.reason === 'unreachable' && tries <= opts.retries)
      throw new ReviewInterrupted(result, member);
    return result;
  };
  const runOpts: FailoverOptions = {
    retryOperation: (err) => err instanceof ReviewInterrupted,
    maxAttempts: DEFAULT_MAX_ATTEMPTS + opts.retries,
  };
  const run = async () => {
    try {
      return await pools.run(orgId, ref, target, operation, runOpts);
    } catch (err) {
      // The config's gateway/pool exists (its foreign key guarantees it), so "not found" means
      // this node's membership cache predates it (e.g. enrolled through another node): reload once.
      if (!(err instanceof NotFoundError)) throw err;
      pools.invalidate();
      return pools.run(orgId, ref, target, operation, runOpts);
    }
  };
  try {
    const served = await run();
    return {
      result: served.value,
      gatewayId: served.gatewayId,
      gatewayName: served.gatewayName,
      attempts: served.attempts,
      tries,
    };
  } catch (err) {
    // Not re-run (a pinned gateway, or the attempt budget spent): the broken review is the answer.
    if (!(err instanceof ReviewInterrupted)) throw err;
    return { result: err.result, ...err.member, attempts: [], tries };
  }
}

export type LoginFailureReason =
  | TokenReviewFailure
  | 'not_configured'
  | 'not_a_service_account'
  | 'namespace_not_allowed'
  | 'name_not_allowed'
  | 'audience_not_allowed';

export interface LoginPolicy {
  allowedNamespaces: string[];
  allowedNames: string[];
  /** '' = no audience requirement. */
  allowedAudience: string;
}

export type LoginDecision =
  | { ok: true; user: ReviewedUser; namespace: string; name: string }
  | { ok: false; reason: LoginFailureReason; message: string };

const SERVICE_ACCOUNT_USER = /^system:serviceaccount:([^:]+):([^:]+)$/;

/** Applies the config's allow-lists to a TokenReview result (pure). */
export function decideLogin(result: TokenReviewResult, policy: LoginPolicy): LoginDecision {
  if (!result.ok) {
    // With an audience configured the review asked for it, so an audience mismatch comes back
    // as "not authenticated" with the cluster's explanation; name it for what it is.
    if (
      result.reason === 'not_authenticated' &&
      policy.allowedAudience &&
      /audience/i.test(result.message)
    ) {
      return {
        ok: false,
        reason: 'audience_not_allowed',
        message: `the token is not valid for audience "${policy.allowedAudience}" (${result.message})`,
      };
    }
    return { ok: false, reason: result.reason, message: result.message };
  }
  const m = SERVICE_ACCOUNT_USER.exec(result.user.username);
  if (!m) {
    return {
      ok: false,
      reason: 'not_a_service_account',
      message: `"${result.user.username}" is not a service account`,
    };
  }
  const [, namespace = '', name = ''] = m;
  if (policy.allowedNamespaces.length && !policy.allowedNamespaces.includes(namespace)) {
    return {
      ok: false,
      reason: 'namespace_not_allowed',
      message: `namespace "${namespace}" is not allowed`,
    };
  }
  if (policy.allowedNames.length && !policy.allowedNames.includes(name)) {
    return {
      ok: false,
      reason: 'name_not_allowed',
      message: `service account "${name}" is not allowed`,
    };
  }
  if (policy.allowedAudience && !result.audiences.includes(policy.allowedAudience)) {
    return {
      ok: false,
      reason: 'audience_not_allowed',
      message: `the token is not valid for audience "${policy.allowedAudience}"`,
    };
  }
  return { ok: true, user: result.user, namespace, name };
}

/** Reasons that mean the config (not the caller's token) is wrong or the cluster is unreachable. */
export const CONFIG_FAILURES: ReadonlySet<LoginFailureReason> = new Set([
  'reviewer_unauthorized',
  'reviewer_forbidden',
  'tls',
  'unreachable',
  'timeout',
  'bad_response',
]);

/** A token no cluster accepts: the save-time check reviews it to prove connectivity and permission. */
export const PROBE_TOKEN = 'gatepool-connectivity-check.invalid';

export type ProbeVerdict =
  | { status: 'verified' | 'reachable'; message: string }
  | { status: 'failed'; reason: TokenReviewFailure; message: string };

/**
 * Interprets the save-time probe. A review that comes back (authenticated or not) proves TLS,
 * reachability and the reviewer's permission. Without a reviewer JWT, 401/403 are expected
 * (the probe had no credential): the cluster is reachable, but permission is proven only by
 * the first login.
 */
export function judgeProbe(result: TokenReviewResult, hasReviewer: boolean): ProbeVerdict {
  if (result.ok || result.reason === 'not_authenticated') {
    return {
      status: 'verified',
      message: 'The cluster answered a TokenReview made with the reviewer credentials.',
    };
  }
  if (
    !hasReviewer &&
    (result.reason === 'reviewer_unauthorized' || result.reason === 'reviewer_forbidden')
  ) {
    return {
      status: 'reachable',
      message:
        'The API server is reachable and its certificate verified. No token reviewer JWT is set, so each login JWT reviews itself: its service account needs the system:auth-delegator ClusterRole.',
    };
  }
  return { status: 'failed', reason: result.reason, message: result.message };
}
