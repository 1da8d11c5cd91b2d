import type { Duplex } from 'node:stream';
import { StreamOpenError, StreamQuietError } from '../tunnel/errors.js';
import type { OpenStreamOptions } from '../tunnel/session.js';
import { selectMember, type Candidate, type SelectionFilter } from './selection.js';

/** What a consumer stores: exactly one of a pinned gateway or a pool. */
export type GatewayRef = { gatewayId: string } | { gatewayPoolId: string };

export interface Target {
  host: string;
  port: number;
}

export interface Attempt {
  gatewayId: string;
  gatewayName: string;
  reason: string;
  message: string;
}

export interface Served<T> {
  value: T;
  gatewayId: string;
  gatewayName: string;
  /** Failed opens before the one that served, in order (empty when the first member served). */
  attempts: Attempt[];
}

export interface FailoverOptions {
  /** Overall budget for opening a stream, across retries. */
  deadlineMs?: number;
  /** At most this many open attempts (retry budget), whatever the pool size. */
  maxAttempts?: number;
  filter?: SelectionFilter;
  signal?: AbortSignal;
  /**
   * Opt-in for operations that are safe to repeat (reads, TokenReviews, echo probes): when the
   * operation fails after the gateway's 200 and this says the error was the transport's (the
   * member died mid-operation), it is run again on another member, within the same budget.
   * Without it nothing is retried after a 200, since the target may have acted.
   *
   * With it, an operation whose member goes quiet mid-way (a keepalive unanswered, ~0.5 s) is
   * also cut and re-run elsewhere, instead of waiting until the member is declared dead.
   */
  retryOperation?: (err: unknown) => boolean;
  /**
   * Bytes sent with the CONNECT on every attempt, ahead of the gateway's 200 (the gateway holds
   * them until the target is dialled). Only bytes that do nothing on a connection that is then
   * abandoned (access-targets/replay-safe.ts): a member that wrote them and died before its 200
   * arrived gets the open retried elsewhere, and the target sees them a second time.
   */
  sendAhead?: Buffer;
}

export interface FailoverDeps {
  /** Current candidates for the reference, from memory (no I/O per selection). */
  candidates(ref: GatewayRef): { label: string; members: Candidate[] };
  openStream(
    gatewayId: string,
    host: string,
    port: number,
    opts: OpenStreamOptions & { timeoutMs: number },
  ): Promise<Duplex>;
  markSuspect(gatewayId: string, reason: string): void;
  onSelected?(ref: GatewayRef, gatewayId: string): void;
  onFailover?(ref: GatewayRef, from: Attempt): void;
  now(): number;
  random?: () => number;
}

/** Nothing could serve the operation; nothing reached the target, so it is safe to retry later. */
export class NoGatewayAvailableError extends Error {
  override name = 'NoGatewayAvailableError';
  readonly code = 'gateway_unavailable';
  constructor(
    message: string,
    readonly attempts: Attempt[],
  ) {
    super(message);
  }
}

const DEFAULT_DEADLINE_MS = 10_000;
/** Open attempts (and, for repeatable operations, re-runs) per operation unless told otherwise. */
export const DEFAULT_MAX_ATTEMPTS = 3;
const PER_ATTEMPT_MS = 5_000;

function describe(label: string, why: string, attempts: Attempt[]): string {
  const tried = attempts.map((a) => `${a.gatewayName}: ${a.message}`).join('; ');
  return `${label}: ${why}${tried ? ` (tried ${tried})` : ''}`;
}

/**
 * Runs `operation` on a stream to `target` through the referenced gateway or pool (DESIGN §5).
 * A stream that could not be opened marks the member suspect and the same operation moves to
 * another member, because nothing reached the target. Once a gateway answered 200 the
 * operation's own outcome stands, since the target may have acted, unless the caller declared
 * the operation repeatable (`retryOperation`).
 */
export async function runThroughPool<T>(
  deps: FailoverDeps,
  ref: GatewayRef,
  target: Target,
  operation: (stream: Duplex, member: { gatewayId: string; gatewayName: string }) => Promise<T>,
  opts: FailoverOptions = {},
): Promise<Served<T>> {
  const pinned = 'gatewayId' in ref;
  const maxAttempts = pinned ? 1 : Math.max(1, opts.maxAttempts ?? DEFAULT_MAX_ATTEMPTS);
  const deadline = deps.now() + (opts.deadlineMs ?? DEFAULT_DEADLINE_MS);
  const attempts: Attempt[] = [];
  const tried = new Set<string>();
  let label = pinned ? 'gateway' : 'gateway pool';

  while (attempts.length < maxAttempts) {
    const remaining = deadline - deps.now();
    if (remaining <= 0)
      throw new NoGatewayAvailableError(describe(label, 'deadline exceeded', attempts), attempts);
    const { label: refLabel, members } = deps.candidates(ref);
    label = refLabel;
    const selection = selectMember(members, {
      exclude: tried,
      filter: opts.filter,
      now: deps.now(),
      random: deps.random,
    });
    if (!selection.ok) {
      // A single gateway is not a pool: "no healthy member" would send the reader to look for one.
      const why =
        pinned && selection.reason === 'none_healthy'
          ? `is not healthy (${members[0]?.unhealthyReason ?? 'not connected'})`
          : selection.message;
      throw new NoGatewayAvailableError(describe(label, why, attempts), attempts);
    }
    const member = selection.member;
    tried.add(member.gatewayId);
    deps.onSelected?.(ref, member.gatewayId);

    let stream: Duplex;
    try {
      stream = await deps.openStream(member.gatewayId, target.host, target.port, {
        timeoutMs: Math.min(remaining, PER_ATTEMPT_MS),
        signal: opts.signal,
        // A pool has other members: waiting on a frozen one until it is declared dead would
        // double the stall. A pinned gateway has nowhere else to go, so it waits.
        abandonWhenQuiet: !pinned,
        // The same for an operation past its 200, when the caller said it may run again.
        cutWhenQuiet: !pinned && opts.retryOperation !== undefined,
        sendAhead: opts.sendAhead,
      });
    } catch (err) {
      if (!(err instanceof StreamOpenError) || err.reason === 'aborted') throw err;
      const attempt: Attempt = {
        gatewayId: member.gatewayId,
        gatewayName: member.name,
        reason: err.reason,
        message: err.gatewayReason ? `${err.reason} (${err.gatewayReason})` : err.message,
      };
      attempts.push(attempt);
      deps.markSuspect(member.gatewayId, attempt.message);
      if (!pinned) deps.onFailover?.(ref, attempt);
      continue;
    }
    let value: T;
    try {
      value = await operation(stream, { gatewayId: member.gatewayId, gatewayName: member.name });
    } catch (err) {
      // The operation may wrap the transport's error; the stream remembers why it was destroyed.
      const cut = stream.errored instanceof StreamQuietError ? stream.errored : undefined;
      stream.destroy();
      const retry = cut !== undefined || opts.retryOperation?.(err) === true;
      const why: unknown = cut ?? err;
      if (pinned || !retry || attempts.length + 1 >= maxAttempts) throw err;
      const attempt: Attempt = {
        gatewayId: member.gatewayId,
        gatewayName: member.name,
        // After a 200 always `stream_broken` (re-run), whether the member died or went quiet.
        reason: 'stream_broken',
        message: why instanceof Error ? why.message : String(why),
      };
      attempts.push(attempt);
      deps.markSuspect(member.gatewayId, attempt.message);
      deps.onFailover?.(ref, attempt);
      continue;
    }
    return { value, gatewayId: member.gatewayId, gatewayName: member.name, attempts };
  }
  const where = `${target.host}:${target.port}`;
  const why = pinned
    ? `could not open a stream to ${where}`
    : `no member could open a stream to ${where} in ${maxAttempts} ${maxAttempts === 1 ? 'attempt' : 'attempts'}`;
  throw new NoGatewayAvailableError(describe(label, why, attempts), attempts);
}
