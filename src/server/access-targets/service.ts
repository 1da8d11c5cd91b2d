/**
 * Access targets (DESIGN §6, issue 14): a named host:port behind a gateway or pool that people
 * and services reach with `gatepool connect`. This file holds the CRUD rules; connector.ts runs
 * the connections.
 */
import { randomUUID } from 'node:crypto';
import type { AuditLog, AuditWho } from '../audit/service.js';
import {
  authorizeReference,
  looksLikeId,
  refOf,
  resolveReferenceNames,
  type AttachDeps,
  type Attacher,
} from '../consumers/attach.js';
import type { Db } from '../db/client.js';
import type { GatewayRef } from '../gateways/consumer-lookup.js';
import { isDatabaseUnavailable } from '../db/errors.js';
import { CREDENTIAL_OUTAGE_MAX_AGE_MS } from '../auth/credential-cache.js';
import { ConflictError, ForbiddenError, NotFoundError } from '../errors.js';
import { targetScope, targetSubject, type AppAbility } from '../rbac/ability.js';
import { isForeignKeyViolation, isUniqueViolation } from '../http/errors.js';
import { pageOf } from '../http/schemas.js';
import {
  deleteTarget,
  insertTarget,
  selectTarget,
  selectTargetPage,
  updateTarget,
  type AccessTargetListing,
  type NewAccessTarget,
  type TargetNames,
} from './queries.js';
import { formatAuthority } from '../../protocol/tunnel.js';

export const PROTOCOLS = ['tcp', 'postgres', 'http', 'kubernetes'] as const;

const capitalize = (text: string) => text.charAt(0).toUpperCase() + text.slice(1);
export type Protocol = (typeof PROTOCOLS)[number];

export interface TargetInput {
  name: string;
  host: string;
  port: number;
  protocol: Protocol;
  description?: string;
  gatewayId?: string | null;
  gatewayPoolId?: string | null;
}

/** Targets are addressed by id or by name in one path segment; names never look like ids. */
export { looksLikeId };

/** A caller as per-target rules see it (a role's `targets` limits, rbac/targets.ts). */
export interface TargetCaller {
  role: string;
  ability: AppAbility;
}

/** Whether the caller may see this target (list and get): a limited `list` hides the others. */
export const maySee = (caller: TargetCaller, target: { name: string }): boolean =>
  caller.ability.can('list', targetSubject(target));

export const mayConnect = (caller: TargetCaller, target: { name: string }): boolean =>
  caller.ability.can('connect', targetSubject(target));

/**
 * Refuses a connection the caller's role does not allow to this target. The refusal must not
 * tell a caller about a target it cannot see: then it is the 404 an unknown name gets
 * (`asked`: the id or name it was asked by). A target it can see, or one it reached before (a
 * re-check, `hideUnseen` false), is a 403 naming the permission, the target and the limit.
 */
export function assertMayConnect(
  caller: TargetCaller,
  target: AccessTargetListing,
  asked: string,
  hideUnseen = true,
): void {
  if (mayConnect(caller, target)) return;
  if (hideUnseen && !maySee(caller, target)) throw new NotFoundError(`Access target "${asked}"`);
  const scope = targetScope(caller.ability, 'connect');
  const allowed = scope === 'all' ? 'every target' : scope.join(', ') || 'no target';
  // Short, permission and target first: a connection cut for it carries the message in a
  // WebSocket close reason (120 characters, behind "access to NAME revoked: ").
  throw new ForbiddenError(
    `Permission denied: AccessTarget:connect on ${target.name} (role "${caller.role}" allows ${allowed}).`,
    { action: 'connect', subject: 'AccessTarget', target: target.name },
  );
}

/** What one gateway said when asked to connect to a target (a TCP connect test). */
export interface ReachAnswer {
  gateway: string;
  ok: boolean;
  error?: string;
}

export interface AccessTargetDeps extends AttachDeps {
  db: Db;
  audit: AuditLog;
  /**
   * Asks each connected gateway of `ref` to connect to host:port (subject to its --allow
   * rules); what the ones that answered said, and how many gateways `ref` has.
   */
  reach?: (
    orgId: string,
    ref: GatewayRef,
    host: string,
    port: number,
  ) => Promise<{ label: string; total: number; answers: ReachAnswer[] }>;
}

/** How long `lookup` serves a target without asking the database (see there). */
const LOOKUP_MAX_AGE_MS = 5000;
/**
 * While the database is away, a target looked up this recently is still served, as long as a
 * credential is (auth/credential-cache.ts): a `gatepool connect` in use keeps opening
 * connections through a restart or outage of the platform's database.
 */
const LOOKUP_OUTAGE_MAX_AGE_MS = CREDENTIAL_OUTAGE_MAX_AGE_MS;
const LOOKUP_MAX_ENTRIES = 10_000;

export class AccessTargetService {
  private readonly lookups = new Map<string, { target: AccessTargetListing; at: number }>();
  private generation = 0;

  constructor(private readonly deps: AccessTargetDeps) {}

  /**
   * `find` for opening connections, answered from memory: on the embedded database a query
   * costs the platform's own thread a millisecond or two, on every connection a client opens
   * (`pgbench -C` opens one per transaction). Every change of a target goes through this
   * service and forgets what it holds, so a deleted or re-pointed target is never served from
   * here; the age limit only bounds how long a renamed pool or gateway keeps its old name in
   * connection audit entries. Only targets found are kept: an unknown name always asks. While
   * the database is away, an older answer is served (LOOKUP_OUTAGE_MAX_AGE_MS): no change can
   * be committed meanwhile, and one committed here before would have cleared it.
   */
  async lookup(orgId: string, idOrName: string): Promise<AccessTargetListing> {
    const key = `${orgId}\u0000${idOrName}`;
    const hit = this.lookups.get(key);
    const age = hit ? performance.now() - hit.at : Infinity;
    if (hit && age < LOOKUP_MAX_AGE_MS) return hit.target;
    const generation = this.generation;
    let target: AccessTargetListing;
    try {
      target = await this.find(orgId, idOrName);
    } catch (err) {
      if (hit && age < LOOKUP_OUTAGE_MAX_AGE_MS && isDatabaseUnavailable(err)) return hit.target;
      throw err;
    }
    // A change committed while the query ran makes this answer stale: do not keep it.
    if (generation === this.generation) {
      if (this.lookups.size >= LOOKUP_MAX_ENTRIES) this.lookups.clear();
      this.lookups.set(key, { target, at: performance.now() });
    }
    return target;
  }

  private forgetLookups(): void {
    this.generation += 1;
    this.lookups.clear();
  }

  /** By id or by name, in the caller's org only: another org's target is not found. */
  /** `find` for a caller whose `list` may be limited: a target it cannot see is not found. */
  async findSeen(caller: TargetCaller & { orgId: string }, idOrName: string) {
    const target = await this.find(caller.orgId, idOrName);
    if (!maySee(caller, target)) throw new NotFoundError(`Access target "${idOrName}"`);
    return target;
  }

  async find(orgId: string, idOrName: string): Promise<AccessTargetListing> {
    const row = await selectTarget(
      this.deps.db,
      orgId,
      looksLikeId(idOrName) ? { id: idOrName } : { name: idOrName },
    );
    if (!row) throw new NotFoundError(`Access target "${idOrName}"`);
    return row;
  }

  async list(
    orgId: string,
    page: { cursor?: string; limit: number },
    names: TargetNames = 'all',
  ): Promise<{ items: AccessTargetListing[]; nextCursor: string | null }> {
    return pageOf(
      await selectTargetPage(this.deps.db, orgId, page.cursor, page.limit, names),
      page.limit,
    );
  }

  /** The targets `caller` may see (a limited `list` shows only the targets it matches). */
  listSeen(
    caller: TargetCaller & { orgId: string },
    page: { cursor?: string; limit: number },
  ): Promise<{ items: AccessTargetListing[]; nextCursor: string | null }> {
    return this.list(caller.orgId, page, targetScope(caller.ability, 'list'));
  }

  async create(actor: Attacher, who: AuditWho, given: TargetInput): Promise<AccessTargetListing> {
    const input = await resolveReferenceNames(this.deps.db, actor, given);
    const ref = refOf({
      gatewayId: input.gatewayId ?? null,
      gatewayPoolId: input.gatewayPoolId ?? null,
    });
    await authorizeReference(this.deps, actor, null, ref);
    const id = randomUUID();
    const row: NewAccessTarget = {
      id,
      orgId: actor.orgId,
      name: input.name,
      host: input.host,
      port: input.port,
      protocol: input.protocol,
      description: input.description ?? '',
      gatewayId: input.gatewayId ?? null,
      gatewayPoolId: input.gatewayPoolId ?? null,
    };
    await this.write(input.name, () =>
      this.deps.audit.audited(who, 'access-target.create', (tx) => insertTarget(tx, row), {
        targetId: id,
        name: row.name,
        address: formatAuthority(row.host, row.port),
        protocol: row.protocol,
        gatewayId: row.gatewayId,
        gatewayPoolId: row.gatewayPoolId,
      }),
    );
    return this.find(actor.orgId, id);
  }

  async update(
    actor: Attacher,
    who: AuditWho,
    id: string,
    given: Partial<TargetInput>,
  ): Promise<AccessTargetListing> {
    const before = await this.find(actor.orgId, id);
    const changes = await resolveReferenceNames(this.deps.db, actor, given);
    const next: Partial<NewAccessTarget> = { ...changes };
    // Giving one reference replaces the other: a target goes through exactly one path.
    if (changes.gatewayId) next.gatewayPoolId = null;
    if (changes.gatewayPoolId) next.gatewayId = null;
    const after = {
      gatewayId: next.gatewayId !== undefined ? next.gatewayId : before.gatewayId,
      gatewayPoolId: next.gatewayPoolId !== undefined ? next.gatewayPoolId : before.gatewayPoolId,
    };
    if (!after.gatewayId && !after.gatewayPoolId)
      throw new ConflictError(
        'An access target needs a gateway or a gateway pool: give the other one.',
      );
    await authorizeReference(this.deps, actor, refOf(before), refOf(after));
    await this.write(changes.name ?? before.name, () =>
      this.deps.audit.audited(
        who,
        'access-target.update',
        async (tx) => {
          if (!(await updateTarget(tx, actor.orgId, before.id, next)))
            throw new NotFoundError(`Access target "${id}"`);
        },
        { targetId: before.id, name: changes.name ?? before.name, changed: Object.keys(changes) },
      ),
    ).finally(() => this.forgetLookups());
    return this.find(actor.orgId, before.id);
  }

  /**
   * After a target is created or re-pointed: warnings when its gateways cannot reach it (outside
   * their --allow rules, a typo, a closed port). Saving is not refused — a gateway may be down
   * now or its rules changed later — but the person saving hears it now, not from the first
   * `gatepool connect` that fails (QA pass 3).
   */
  async reachWarnings(orgId: string, target: AccessTargetListing): Promise<string[]> {
    const ref = refOf(target);
    if (!ref || !this.deps.reach) return [];
    const where = formatAuthority(target.host, target.port);
    let reached;
    try {
      reached = await this.deps.reach(orgId, ref, target.host, target.port);
    } catch {
      // Advice, not a rule: the target is saved either way, and a check that could not run
      // (the pool cache reloading, the database away) must not turn the save into an error.
      return [];
    }
    const { label, total, answers } = reached;
    if (total === 0)
      return [`${capitalize(label)} has no members: nothing can reach ${where} yet.`];
    if (answers.length === 0)
      return [
        `No gateway of ${label} is connected, so whether it can reach ${where} is not known yet.`,
      ];
    const failing = answers.filter((a) => !a.ok);
    if (failing.length === 0) return [];
    const why = failing.map((a) => `${a.gateway}: ${a.error ?? 'failed'}`).join('; ');
    if (failing.length === answers.length)
      return [
        `No connected gateway of ${label} can reach ${where} (${why}): \`gatepool connect ${target.name}\` fails until one can.`,
      ];
    return [
      `${failing.length} of ${answers.length} connected gateways of ${label} cannot reach ${where} (${why}): connections go to the others.`,
    ];
  }

  async remove(orgId: string, who: AuditWho, id: string): Promise<void> {
    const target = await this.find(orgId, id);
    await this.deps.audit
      .audited(
        who,
        'access-target.delete',
        async (tx) => {
          if (!(await deleteTarget(tx, orgId, target.id)))
            throw new NotFoundError(`Access target "${id}"`);
        },
        { targetId: target.id, name: target.name },
      )
      .finally(() => this.forgetLookups());
  }

  private async write<T>(name: string, op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (err) {
      if (isUniqueViolation(err))
        throw new ConflictError(`An access target named "${name}" already exists.`, { name });
      // The gateway or pool was deleted between the checks and the write.
      if (isForeignKeyViolation(err)) throw new NotFoundError('Gateway or gateway pool');
      throw err;
    }
  }
}
