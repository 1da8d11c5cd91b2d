import type { FastifyRequest } from 'fastify';
import type { AuditActor, AuditContext, AuditWho } from '../audit/service.js';
import { unauthorized } from '../http/errors.js';
import type { Feature } from '../license/plans.js';
import type { AppAbility } from '../rbac/ability.js';
import type { Action, Subject } from '../rbac/permissions.js';

/** Who is calling: a person through a session, or a machine identity through an access token. */
export interface Actor {
  type: 'user' | 'identity';
  id: string;
  name: string;
  orgId: string;
  role: string;
  ability: AppAbility;
  sessionId?: string;
  tokenId?: string;
  /** A person whose password someone else chose: only routes marked `beforePasswordChange`. */
  passwordChangeRequired?: boolean;
}

declare module 'fastify' {
  interface FastifyRequest {
    actor?: Actor;
  }
  interface FastifyContextConfig {
    /** `public`: no credentials; `authenticated`: any valid caller. Otherwise give `permission`. */
    auth?: 'public' | 'authenticated';
    permission?: [Action, Subject];
    /** A plan feature the route needs (403 plan_upgrade_required without it), checked after the permission. */
    license?: Feature;
    /** Open to a person who must still choose their own password (who am I, change it, sign out). */
    beforePasswordChange?: boolean;
  }
}

export function actorOf(req: FastifyRequest): Actor {
  if (!req.actor) throw unauthorized();
  return req.actor;
}

export function auditActor(actor: Actor): AuditActor {
  return { type: actor.type, id: actor.id, name: actor.name };
}

export function auditContext(req: FastifyRequest, orgId: string | null): AuditContext {
  return { orgId, ip: req.ip, userAgent: req.headers['user-agent'] ?? null };
}

/** The caller of an authenticated request as an audited change records it. */
export function whoOf(req: FastifyRequest): AuditWho {
  const actor = actorOf(req);
  return { actor: auditActor(actor), ...auditContext(req, actor.orgId) };
}
