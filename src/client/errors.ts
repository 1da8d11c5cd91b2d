/** A failure the CLI reports as one line and a non-zero exit, without a stack trace. */
export class ClientError extends Error {
  override name = 'ClientError';
  constructor(
    message: string,
    /** The exit code: 1, or what a shell uses for the same failure (127: command not found). */
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/** The platform answered with an HTTP error: callers that expect a status can tell it apart. */
export class PlatformRefusal extends ClientError {
  override name = 'PlatformRefusal';
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}
