/**
 * Why a tunnel stream could not be opened. Every open failure happens before the gateway's 200,
 * so nothing reached the target but what the caller sent ahead as replay-safe (`sendAhead`), and
 * the caller may retry on another pool member (DESIGN §5).
 */
export type StreamOpenFailure =
  | 'not_connected'
  | 'tunnel_failed'
  | 'refused'
  | 'unreachable'
  | 'draining'
  | 'timeout'
  /** The tunnel went quiet before the gateway answered (only with `abandonWhenQuiet`). */
  | 'quiet'
  | 'aborted';

export class StreamOpenError extends Error {
  override name = 'StreamOpenError';
  /**
   * Always false: open failures precede the 200, after which nothing is an open failure (bytes
   * sent ahead may have been written, which is why only replay-safe ones are).
   */
  readonly reachedTarget = false as const;

  constructor(
    readonly reason: StreamOpenFailure,
    message: string,
    readonly gatewayId: string,
    /** The gateway's reason header for refused / unreachable / draining answers. */
    readonly gatewayReason?: string,
  ) {
    super(message);
  }
}

/**
 * An open stream cut because its tunnel went quiet (only with `cutWhenQuiet`). The operation on
 * it may have reached the target: only callers that declared it repeatable ask for this.
 */
export class StreamQuietError extends Error {
  override name = 'StreamQuietError';
  readonly code = 'tunnel_quiet';
}
