import type { Candidate } from '../../src/server/pools/selection.js';

/** A healthy, idle pool member as selection sees it; `over` sets whatever a test is about. */
export function candidate(name: string, over: Partial<Candidate> = {}): Candidate {
  return {
    gatewayId: name,
    name,
    weight: 100,
    priority: 0,
    healthy: true,
    outstanding: 0,
    labels: {},
    ...over,
  };
}
