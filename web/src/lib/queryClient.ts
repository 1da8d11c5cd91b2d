import { QueryCache, QueryClient } from '@tanstack/react-query';
import { ApiError, isUnreachable } from '../api/client';
import { POLL_MS } from './live';

/**
 * While the platform is away (restart, network), queries keep asking every 5 s instead of
 * failing: the page keeps what it last loaded and the shell says the platform is unreachable.
 */
export function retryUnlessAnswered(count: number, err: unknown): boolean {
  if (isUnreachable(err)) return true;
  // A 4xx will not change by asking again.
  return !(err instanceof ApiError && err.status >= 400 && err.status < 500) && count < 2;
}

export function retryDelay(count: number, err: unknown): number {
  return isUnreachable(err) ? POLL_MS : Math.min(1000 * 2 ** count, 30_000);
}

export function makeQueryClient(): QueryClient {
  const queryClient: QueryClient = new QueryClient({
    // A 401 anywhere means the session ended: asking who we are again shows the sign-in form.
    queryCache: new QueryCache({
      onError: (err, query) => {
        if (err instanceof ApiError && err.status === 401 && query.queryKey[0] !== 'me') {
          void queryClient.invalidateQueries({ queryKey: ['me'] });
        }
      },
    }),
    defaultOptions: {
      queries: { retry: retryUnlessAnswered, retryDelay, refetchOnWindowFocus: false },
    },
  });
  return queryClient;
}
