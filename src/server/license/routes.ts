import { eq } from 'drizzle-orm';
import { z } from 'zod';
import { actorOf, auditActor, auditContext } from '../auth/actor.js';
import type { AppContext } from '../context.js';
import { organizations } from '../db/schema.js';
import { unprocessable } from '../http/errors.js';
import type { Api } from '../http/schemas.js';
import type { OrgPlan } from './service.js';

const PROBLEMS: Record<string, string> = {
  malformed: 'The license is not a valid gatepool license (expected a compact JWS).',
  bad_signature:
    'The license signature does not verify against this platform’s license public key.',
  expired: 'The license has expired.',
  wrong_org: 'The license was issued for a different organization.',
  no_public_key:
    'This platform has no license public key configured (set GATEPOOL_LICENSE_PUBLIC_KEY).',
};

const view = (p: OrgPlan) => ({
  plan: p.plan,
  features: p.features,
  expiresAt: p.expiresAt?.toISOString() ?? null,
  installed: p.installed,
  problem: p.licenseProblem ? PROBLEMS[p.licenseProblem] : null,
});

export function licenseRoutes(app: Api, ctx: AppContext): void {
  app.get(
    '/api/v1/license',
    {
      config: { permission: ['read', 'License'] },
      schema: { tags: ['license'], summary: "The org's plan and features" },
    },
    async (req) => view(await ctx.licenses.planFor(actorOf(req).orgId)),
  );

  app.put(
    '/api/v1/license',
    {
      config: { permission: ['edit', 'License'] },
      schema: {
        tags: ['license'],
        summary: 'Install a license for the organization',
        body: z.strictObject({
          key: z.string().trim().min(1, 'key must not be empty').max(8192, 'key is too long'),
        }),
      },
    },
    async (req) => {
      const actor = actorOf(req);
      // Refuse a license that would not be in force: installing it would silently drop the plan.
      const plan = await ctx.licenses.evaluate(actor.orgId, req.body.key);
      if (plan.licenseProblem) {
        throw unprocessable(PROBLEMS[plan.licenseProblem] ?? 'Invalid license.', {
          reason: plan.licenseProblem,
        });
      }
      await ctx.db.transaction(async (tx) => {
        await tx
          .update(organizations)
          .set({ licenseKey: req.body.key, updatedAt: new Date() })
          .where(eq(organizations.id, actor.orgId));
        await ctx.audit.record(
          auditActor(actor),
          'license.update',
          { plan: plan.plan, expiresAt: plan.expiresAt?.toISOString() ?? null },
          auditContext(req, actor.orgId),
          tx,
        );
      });
      ctx.licenses.invalidate(actor.orgId);
      return view(plan);
    },
  );
}
