/** A failure the CLI reports as one line and a non-zero exit, without a stack trace. */
export class ClientError extends Error {
  override name = 'ClientError';
}
