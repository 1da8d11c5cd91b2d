import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';

/**
 * JSON lines for machines; readable lines when a person watches the terminal. Secrets never
 * reach the logger: request logs carry no headers or bodies, and credentials are redacted
 * in case a future log call passes them.
 */
export function createLogger(level: string, opts: { pretty?: boolean } = {}): Logger {
  const options = {
    level,
    redact: {
      paths: ['req.headers.authorization', 'req.headers.cookie', '*.password', '*.token', '*.jwt'],
      censor: '[redacted]',
    },
  };
  const usePretty = opts.pretty ?? process.stdout.isTTY;
  return usePretty
    ? pino(
        options,
        pretty({ colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' }),
      )
    : pino(options);
}
