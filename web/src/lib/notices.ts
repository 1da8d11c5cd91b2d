import { useSyncExternalStore } from 'react';

/**
 * Warnings the platform answered with a change that succeeded (e.g. deleting the last healthy
 * member of a pool in use). They outlive the row that caused them and stay until dismissed.
 */
export interface Notice {
  id: number;
  text: string;
}

let notices: Notice[] = [];
let next = 1;
const listeners = new Set<() => void>();
const emit = () => {
  for (const l of listeners) l();
};

export const warningNotices = {
  get: () => notices,
  subscribe(l: () => void): () => void {
    listeners.add(l);
    return () => listeners.delete(l);
  },
  /** Shows each of `warnings` (an answer's `warnings`, possibly absent) until dismissed. */
  add(warnings: readonly string[] | undefined) {
    const fresh = (warnings ?? []).filter((w) => w && !notices.some((n) => n.text === w));
    if (!fresh.length) return;
    notices = [...notices, ...fresh.map((text) => ({ id: next++, text }))];
    emit();
  },
  dismiss(id: number) {
    notices = notices.filter((n) => n.id !== id);
    emit();
  },
  /** For tests: start empty. */
  clear() {
    notices = [];
    emit();
  },
};

export function useWarningNotices(): Notice[] {
  return useSyncExternalStore(warningNotices.subscribe, warningNotices.get);
}
