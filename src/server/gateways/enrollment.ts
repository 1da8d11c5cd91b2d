/**
 * Enrollment rules: single-use tokens (stored hashed, shown once, optionally naming pools to
 * join) exchanged with a CSR for a gateway client certificate.
 */
import { randomUUID, verify, X509Certificate } from 'node:crypto';
import { parseGatewayCert, type GatewayCertInfo } from '../../protocol/identity.js';
import {
  TUNNEL_LOOKUP_SKEW_MS,
  tunnelLookupMessage,
  type TunnelLookupRequest,
  type TunnelLookupResponse,
} from '../../protocol/tunnel-lookup.js';
import type { AuditLog, AuditWho } from '../audit/service.js';
import type { Actor } from '../auth/actor.js';
import { hashToken, newToken } from '../auth/tokens.js';
import type { Db } from '../db/client.js';
import {
  AppError,
  badRequest,
  conflict,
  forbidden,
  isUniqueViolation,
  permissionDenied,
  tooManyRequests,
} from '../http/errors.js';
import type { Feature } from '../license/plans.js';
import type { CaStore } from './ca-store.js';
import { CsrError, signGatewayCsr } from './pki.js';
import {
  claimToken,
  existingPools,
  findToken,
  findTokenByHash,
  gatewayNameTaken,
  insertGateway,
  insertMembership,
  insertToken,
  listTokens,
  poolsByRefs,
  revokeToken,
  type PoolRow,
  type TokenRow,
} from './queries.js';

const INVALID_TOKEN =
  'This enrollment token is unknown, expired, revoked or already used. Enrollment tokens are single-use: ' +
  'create a new one in the web UI (Enrollment tokens, in the menu) or with POST /api/v1/gateways/enrollment-tokens.';

export type TokenState = 'active' | 'used' | 'revoked' | 'expired';

function tokenState(t: TokenRow, now = Date.now()): TokenState {
  if (t.revokedAt) return 'revoked';
  if (t.usedAt) return 'used';
  return t.expiresAt.getTime() <= now ? 'expired' : 'active';
}

/** `existing`: the ids of the token's pools that still exist (a pool may be deleted after). */
export const tokenView = (t: TokenRow, existing: ReadonlySet<string>) => ({
  id: t.id,
  name: t.name,
  poolIds: t.poolIds,
  missingPoolIds: t.poolIds.filter((id) => !existing.has(id)),
  state: tokenState(t),
  expiresAt: t.expiresAt.toISOString(),
  usedAt: t.usedAt?.toISOString() ?? null,
  usedByGatewayId: t.usedByGatewayId,
  revokedAt: t.revokedAt?.toISOString() ?? null,
  createdAt: t.createdAt.toISOString(),
});

export interface EnrollmentDeps {
  db: Db;
  audit: AuditLog;
  cas: CaStore;
  licenses: { requireFeature(orgId: string, feature: Feature): Promise<void> };
  /** Gateway enrollments per client IP: seconds to wait, or 0. */
  enrollLimit(key: string): number;
  /** host:port gateways dial (known once the tunnel listener is bound). */
  tunnelAddress(): string;
  /** A new gateway must appear in the pools' cache (pinned references and memberships). */
  changed(): void;
  /** The live gateway a certificate belongs to (same check as the tunnel's), or null. */
  identify(info: GatewayCertInfo): Promise<{ gatewayId: string; name: string } | null>;
}

export class EnrollmentService {
  constructor(private readonly deps: EnrollmentDeps) {}

  async createToken(
    actor: Pick<Actor, 'orgId' | 'role' | 'ability' | 'type' | 'id'>,
    who: AuditWho,
    input: { name: string; ttlSeconds: number; pools: string[] },
    platformUrl: string,
  ) {
    const { token, hash } = newToken('enrollment');
    const id = randomUUID();
    const expiresAt = new Date(Date.now() + input.ttlSeconds * 1000);
    let pools: PoolRow[] = [];
    if (input.pools.length) {
      // Joining pools at enrollment changes pools: same license and permission as doing it by hand.
      await this.deps.licenses.requireFeature(actor.orgId, 'gatewayPool');
      if (!actor.ability.can('edit', 'GatewayPool'))
        throw permissionDenied(actor, 'edit', 'GatewayPool');
      pools = await poolsByRefs(this.deps.db, actor.orgId, input.pools);
    }
    const poolIds = pools.map((p) => p.id);
    await this.deps.audit.audited(
      who,
      'gateway.enrollment-token-create',
      (tx) =>
        insertToken(tx, {
          id,
          orgId: actor.orgId,
          name: input.name,
          tokenHash: hash,
          poolIds,
          expiresAt,
          createdByType: actor.type,
          createdById: actor.id,
        }),
      { tokenId: id, name: input.name, expiresAt: expiresAt.toISOString(), poolIds },
    );
    return {
      id,
      name: input.name,
      token,
      expiresAt: expiresAt.toISOString(),
      poolIds,
      command: `gatepool gateway start --platform ${platformUrl} --token ${token} --name <gateway-name> --allow <host:port>`,
    };
  }

  async listTokens(orgId: string, cursor: string | undefined, limit: number) {
    const page = await listTokens(this.deps.db, orgId, cursor, limit);
    const ids = [...new Set(page.items.flatMap((t) => t.poolIds))];
    const existing = new Set((await existingPools(this.deps.db, orgId, ids)).map((p) => p.id));
    return { items: page.items.map((t) => tokenView(t, existing)), nextCursor: page.nextCursor };
  }

  async revokeToken(orgId: string, who: AuditWho, id: string): Promise<void> {
    const row = await findToken(this.deps.db, orgId, id);
    if (row.usedAt)
      throw conflict('This enrollment token was already used; delete the gateway instead.');
    await this.deps.audit.audited(
      who,
      'gateway.enrollment-token-revoke',
      (tx) => revokeToken(tx, row.id),
      { tokenId: row.id, name: row.name },
    );
  }

  /** Exchanges a token and a CSR for a certificate; the gateway joins the token's pools. */
  async enroll(
    input: { token: string; name: string; csr: string; pools?: string[] },
    client: { ip: string; userAgent: string | null },
  ) {
    const wait = this.deps.enrollLimit(`enroll:${client.ip}`);
    if (wait) throw tooManyRequests(`Too many enrollment attempts; try again in ${wait} s.`, wait);
    const token = await findTokenByHash(this.deps.db, hashToken(input.token));
    if (!token || tokenState(token) !== 'active')
      throw new AppError(401, 'invalid_enrollment_token', INVALID_TOKEN);
    const orgId = token.orgId;
    const { chosen: joinPools, missing } = await this.poolsToJoin(
      orgId,
      token.poolIds,
      input.pools,
    );
    const gatewayId = randomUUID();
    const ca = await this.deps.cas.forOrg(orgId);
    let signed;
    try {
      signed = await signGatewayCsr({ ca, csrPem: input.csr, orgId, gatewayId });
    } catch (err) {
      if (err instanceof CsrError) throw badRequest(`csr: ${err.message}`);
      throw err;
    }
    const who: AuditWho = {
      actor: { type: 'gateway', id: gatewayId, name: input.name },
      orgId,
      ip: client.ip,
      userAgent: client.userAgent,
    };
    try {
      await this.deps.audit.audited(
        who,
        'gateway.enroll',
        async (tx) => {
          const taken = await gatewayNameTaken(tx, orgId, input.name);
          if (taken)
            throw conflict(
              `A gateway named "${taken}" already exists in this organization (names are compared ignoring case); choose another --name or delete the old gateway.`,
            );
          if (!(await claimToken(tx, token.id, gatewayId)))
            throw new AppError(401, 'invalid_enrollment_token', INVALID_TOKEN);
          await insertGateway(tx, {
            id: gatewayId,
            orgId,
            name: input.name,
            certFingerprint: signed.fingerprint256,
            certExpiresAt: signed.notAfter,
            enrolledWithTokenId: token.id,
          });
          for (const pool of joinPools) {
            await insertMembership(tx, orgId, pool.id, gatewayId);
            await this.deps.audit.record(
              who.actor,
              'gateway-pool.member-add',
              {
                poolId: pool.id,
                pool: pool.name,
                gatewayId,
                gateway: input.name,
                via: 'enrollment',
              },
              who,
              tx,
            );
          }
        },
        {
          gatewayId,
          name: input.name,
          tokenId: token.id,
          tokenName: token.name,
          pools: joinPools.map((p) => p.name),
        },
      );
    } catch (err) {
      if (isUniqueViolation(err)) {
        throw conflict(
          `A gateway named "${input.name}" already exists in this organization; choose another --name or delete the old gateway.`,
        );
      }
      throw err;
    }
    this.deps.changed();
    const serverCa = await this.deps.cas.tunnelServerCa();
    return {
      gatewayId,
      orgId,
      certificate: signed.certPem,
      certificateChain: [signed.certPem, ca.certPem],
      caCertificate: ca.certPem,
      serverCaCertificate: serverCa.certPem,
      tunnelAddress: this.deps.tunnelAddress(),
      certificateExpiresAt: signed.notAfter.toISOString(),
      pools: joinPools.map((p) => p.name),
      // The agent prints these: a gateway that silently joined no pool looks enrolled and
      // healthy, while nothing routes to it.
      warnings: missing.map(
        (id) => `pool ${id} of this token no longer exists; enrolled without it`,
      ),
    };
  }

  /**
   * The current tunnel address, for an enrolled gateway that proves it holds its key (see
   * protocol/tunnel-lookup.ts). Scoped by the certificate: org and gateway id as issued, and its
   * fingerprint must be the one stored for that gateway, as the tunnel itself checks.
   */
  async tunnelFor(input: TunnelLookupRequest): Promise<TunnelLookupResponse> {
    const info = parseGatewayCert(input.certificate);
    if (!info) throw badRequest('certificate: not a gatepool gateway certificate');
    const at = Date.parse(input.timestamp);
    if (!Number.isFinite(at) || Math.abs(Date.now() - at) > TUNNEL_LOOKUP_SKEW_MS)
      throw badRequest(
        "timestamp: more than 10 minutes from the platform's clock; check this host's clock",
      );
    let signed: boolean;
    try {
      signed = verify(
        'sha256',
        tunnelLookupMessage(info.orgId, info.gatewayId, input.timestamp),
        new X509Certificate(input.certificate).publicKey,
        Buffer.from(input.signature, 'base64'),
      );
    } catch {
      signed = false;
    }
    if (!signed)
      throw new AppError(
        401,
        'invalid_signature',
        "The signature does not match the certificate's key.",
      );
    const record = await this.deps.identify(info);
    if (!record)
      throw new AppError(
        404,
        'gateway_unknown',
        `This platform does not know gateway ${info.gatewayId}: it was deleted here, or its ` +
          `certificate was replaced, or this is not the platform (or a restore of the one) it ` +
          'enrolled with. Enroll it again with a new token and a fresh --state-dir.',
      );
    return {
      gatewayId: record.gatewayId,
      name: record.name,
      tunnelAddress: this.deps.tunnelAddress(),
    };
  }

  /**
   * Pools a newly enrolled gateway joins: the token's pools, or the subset named with `--pool`.
   * Naming a pool the token does not list is refused, so a token cannot be stretched.
   */
  private async poolsToJoin(
    orgId: string,
    tokenPoolIds: string[],
    requested: string[] | undefined,
  ): Promise<{ chosen: PoolRow[]; missing: string[] }> {
    // A pool deleted since the token was made is no longer joined (`missing` says which).
    const allowed = await existingPools(this.deps.db, orgId, tokenPoolIds);
    const missing = tokenPoolIds.filter((id) => !allowed.some((p) => p.id === id));
    let chosen = allowed;
    if (requested?.length) {
      const unknown = requested.filter((name) => !allowed.some((p) => p.name === name));
      if (unknown.length) {
        throw forbidden(
          `This enrollment token does not allow joining gateway pool(s) ${unknown.map((n) => `"${n}"`).join(', ')}` +
            (allowed.length
              ? `; it allows ${allowed.map((p) => `"${p.name}"`).join(', ')}.`
              : '; it names no pools.'),
          { pools: unknown },
        );
      }
      chosen = allowed.filter((p) => requested.includes(p.name));
    }
    if (chosen.length) await this.deps.licenses.requireFeature(orgId, 'gatewayPool');
    return { chosen, missing };
  }
}
