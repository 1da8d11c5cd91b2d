/** A failure the CLI reports as one line and a non-zero exit, without a stack trace. */
export class ClientError extends Error {
  override name = 'ClientError';
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
