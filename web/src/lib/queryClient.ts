import { MutationCache, QueryCache, QueryClient } from '@tanstack/react-query';
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
  /**
   * A 401 anywhere means the session ended: asking who we are again shows the sign-in form.
   * A 403 may mean an admin changed this person's role since the page loaded: asking again
   * brings the sidebar's role and every control's enabled state up to date, so a demoted
   * person no longer sees enabled forms that will be refused.
   */
  const recheckWho = (err: unknown) => {
    if (err instanceof ApiError && (err.status === 401 || err.status === 403))
      void queryClient.invalidateQueries({ queryKey: ['me'] });
  };
  const queryClient: QueryClient = new QueryClient({
    queryCache: new QueryCache({
      onError: (err, query) => {
        if (query.queryKey[0] !== 'me') recheckWho(err);
      },
    }),
    mutationCache: new MutationCache({ onError: recheckWho }),
    defaultOptions: {
      queries: { retry: retryUnlessAnswered, retryDelay, refetchOnWindowFocus: false },
    },
  });
  return queryClient;
}
