/**
 * The session cookie is shared by every tab of the browser: when one tab signs in, out or
 * moves to another organization, the others would go on showing the old session until they
 * next asked who they are. This tells them at once.
 */
import { useQueryClient } from '@tanstack/react-query';
import { useEffect } from 'react';

const CHANNEL = 'gatepool-session';

/** Tells the other tabs that the session changed: they ask who they are again. */
export function announceSessionChange(): void {
  if (typeof BroadcastChannel === 'undefined') return;
  const channel = new BroadcastChannel(CHANNEL);
  channel.postMessage('session-changed');
  channel.close();
}

/** Asks who we are again whenever another tab announces a session change. */
export function useSessionChangesOfOtherTabs(): void {
  const qc = useQueryClient();
  useEffect(() => {
    if (typeof BroadcastChannel === 'undefined') return;
    const channel = new BroadcastChannel(CHANNEL);
    channel.onmessage = () => void qc.invalidateQueries({ queryKey: ['me'] });
    return () => channel.close();
  }, [qc]);
}
