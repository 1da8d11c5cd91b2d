import { eq } from 'drizzle-orm';
import type { AuditLog, AuditWho } from '../audit/service.js';
import type { Db } from '../db/client.js';
import { organizations } from '../db/schema.js';
import { AppError, unprocessable } from '../http/errors.js';
import type { LicenseCheck, LicenseVerifier } from './license.js';
import {
  FEATURE_UPGRADE_MESSAGES,
  PLANS,
  type Feature,
  type Features,
  type Plan,
} from './plans.js';

export interface OrgPlan {
  plan: Plan;
  features: Features;
  expiresAt: Date | null;
  /** Why an installed license is not in force (bad signature, expired, …), if so. */
  licenseProblem: Exclude<LicenseCheck, { ok: true }>['reason'] | null;
  installed: boolean;
}

/**
 * Resolves an org's plan from its installed license. Verification is cheap but runs on every
 * gated request, so results are cached briefly and dropped when a license is installed.
 */
export class LicenseService {
  private readonly cache = new Map<string, { at: number; plan: OrgPlan }>();

  constructor(
    private readonly db: Db,
    readonly verifier: LicenseVerifier,
    private readonly ttlMs = 10_000,
  ) {}

  async planFor(orgId: string): Promise<OrgPlan> {
    const hit = this.cache.get(orgId);
    // Cached entries also expire with the license itself, never serving a lapsed plan.
    if (
      hit &&
      Date.now() - hit.at < this.ttlMs &&
      (hit.plan.licenseProblem !== null ||
        !hit.plan.expiresAt ||
        hit.plan.expiresAt.getTime() > Date.now())
    ) {
      return hit.plan;
    }
    const [org] = await this.db
      .select({ licenseKey: organizations.licenseKey })
      .from(organizations)
      .where(eq(organizations.id, orgId));
    const plan = await this.evaluate(orgId, org?.licenseKey ?? null);
    this.cache.set(orgId, { at: Date.now(), plan });
    return plan;
  }

  async evaluate(orgId: string, licenseKey: string | null): Promise<OrgPlan> {
    const free: OrgPlan = {
      plan: 'free',
      features: { ...PLANS.free },
      expiresAt: null,
      licenseProblem: null,
      installed: !!licenseKey,
    };
    if (!licenseKey) return free;
    const check = await this.verifier.verify(licenseKey, orgId);
    // An expired license keeps its date: "expired on …" is what the operator acts on.
    if (!check.ok)
      return { ...free, licenseProblem: check.reason, expiresAt: check.expiredAt ?? null };
    const { plan, exp } = check.claims;
    return {
      plan,
      features: { ...PLANS[plan] },
      expiresAt: exp ? new Date(exp * 1000) : null,
      licenseProblem: null,
      installed: true,
    };
  }

  invalidate(orgId: string): void {
    this.cache.delete(orgId);
  }

  async hasFeature(orgId: string, feature: Feature): Promise<boolean> {
    return (await this.planFor(orgId)).features[feature];
  }

  /** 403 `plan_upgrade_required` when the org's plan lacks the feature. */
  async requireFeature(orgId: string, feature: Feature): Promise<void> {
    if (!(await this.hasFeature(orgId, feature))) {
      throw new AppError(403, 'plan_upgrade_required', FEATURE_UPGRADE_MESSAGES[feature], {
        feature,
      });
    }
  }
}

/** Why an installed license is not in force, in words an operator can act on. */
export const LICENSE_PROBLEMS: Record<OrgPlan['licenseProblem'] & string, string> = {
  malformed: 'The license is not a valid gatepool license (expected a compact JWS).',
  bad_signature:
    'The license signature does not verify against this platform’s license public key.',
  expired: 'The license has expired.',
  wrong_org: 'The license was issued for a different organization.',
  no_public_key:
    'This platform has no license public key configured (set GATEPOOL_LICENSE_PUBLIC_KEY).',
};

/**
 * Installs a license for an org. One that would not be in force is refused: installing it
 * would silently drop the org to the free plan.
 */
export async function installLicense(
  deps: { db: Db; audit: AuditLog; licenses: LicenseService },
  who: AuditWho,
  orgId: string,
  key: string,
): Promise<OrgPlan> {
  const plan = await deps.licenses.evaluate(orgId, key);
  if (plan.licenseProblem) {
    // Which organization it should have been issued for: the id the issuer needs (--org).
    const message =
      plan.licenseProblem === 'wrong_org'
        ? `${LICENSE_PROBLEMS.wrong_org} This organization's id is ${orgId}: issue its license with --org ${orgId}.`
        : LICENSE_PROBLEMS[plan.licenseProblem];
    throw unprocessable(message, { reason: plan.licenseProblem });
  }
  await deps.audit.audited(
    who,
    'license.update',
    async (tx) => {
      await tx
        .update(organizations)
        .set({ licenseKey: key, updatedAt: new Date() })
        .where(eq(organizations.id, orgId));
    },
    { plan: plan.plan, expiresAt: plan.expiresAt?.toISOString() ?? null },
  );
  deps.licenses.invalidate(orgId);
  return plan;
}
