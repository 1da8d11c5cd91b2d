import { and, eq } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { gateways } from '../db/schema.js';
import { notFound } from '../http/errors.js';

export type GatewayRow = typeof gateways.$inferSelect;

/** The org-scoped lookup every gateway route uses: another org's id is simply not found. */
export async function findGateway(db: Db, orgId: string, id: string): Promise<GatewayRow> {
  const [row] = await db
    .select()
    .from(gateways)
    .where(and(eq(gateways.orgId, orgId), eq(gateways.id, id)));
  if (!row) throw notFound(`Gateway ${id}`);
  return row;
}

/** Gateway names appear in logs, audit entries and pool listings; keep them hostname-like. */
export const GATEWAY_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const GATEWAY_NAME_MESSAGE =
  'name must be 1-64 characters: letters, digits, dots, underscores and hyphens, starting with a letter or digit';
