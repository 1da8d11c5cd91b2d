/** What each plan unlocks. Pure data: the one place a feature flag is defined. */
export const PLANS = {
  free: { gatewayPool: false },
  enterprise: { gatewayPool: true },
} as const;

export type Plan = keyof typeof PLANS;
export type Feature = keyof (typeof PLANS)['enterprise'];
export type Features = Record<Feature, boolean>;

export const FEATURE_UPGRADE_MESSAGES: Record<Feature, string> = {
  gatewayPool:
    'Your current plan does not support gateway pools. Please upgrade to an Enterprise plan.',
};

export const isPlan = (p: unknown): p is Plan => typeof p === 'string' && p in PLANS;
