import { z } from 'zod';
import { actorOf, whoOf } from '../auth/actor.js';
import type { AppContext } from '../context.js';
import type { Api } from '../http/schemas.js';
import { installLicense, LICENSE_PROBLEMS, type OrgPlan } from './service.js';

const planSchema = z.object({
  plan: z.string(),
  features: z.record(z.string(), z.boolean()),
  expiresAt: z.string().nullable(),
  installed: z.boolean(),
  problem: z.string().nullable(),
});
const view = (p: OrgPlan) => ({
  plan: p.plan,
  features: p.features,
  expiresAt: p.expiresAt?.toISOString() ?? null,
  installed: p.installed,
  problem:
    p.licenseProblem === 'expired' && p.expiresAt
      ? `The license expired on ${p.expiresAt.toISOString().slice(0, 10)}.`
      : p.licenseProblem
        ? LICENSE_PROBLEMS[p.licenseProblem]
        : null,
});

export function licenseRoutes(app: Api, ctx: AppContext): void {
  const tags = ['license'];

  app.get(
    '/api/v1/license',
    {
      config: { permission: ['read', 'License'] },
      schema: {
        tags,
        operationId: 'getLicense',
        summary: "The org's plan and features",
        response: { 200: planSchema },
      },
    },
    async (req) => view(await ctx.licenses.planFor(actorOf(req).orgId)),
  );

  app.put(
    '/api/v1/license',
    {
      config: { permission: ['edit', 'License'] },
      schema: {
        tags,
        operationId: 'installLicense',
        summary: 'Install a license for the organization (refused when it would not be in force)',
        body: z.strictObject({
          key: z.string().trim().min(1, 'key must not be empty').max(8192, 'key is too long'),
        }),
        response: { 200: planSchema },
      },
    },
    async (req) =>
      view(
        await installLicense(
          { db: ctx.db, audit: ctx.audit, licenses: ctx.licenses },
          whoOf(req),
          actorOf(req).orgId,
          req.body.key,
        ),
      ),
  );
}
