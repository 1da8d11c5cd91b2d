/** Response and field schemas of the gateways API, shared with the pools API. */
import { z } from 'zod';
import { GATEWAY_HEALTH_VALUES } from './health.js';

/** PostgreSQL cannot store NUL, nor a lone UTF-16 surrogate inside jsonb. */
const storable = (s: string) =>
  !s.includes('\u0000') &&
  !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s);

const labelKey = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$/,
    'label keys are 1-63 characters: letters, digits, . _ / -',
  );
export const labels = z
  .record(
    labelKey,
    z
      .string()
      .max(256, 'label values are at most 256 characters')
      .refine(storable, 'label values must not contain NUL characters or invalid Unicode'),
  )
  .refine((l) => Object.keys(l).length <= 32, 'at most 32 labels');

export const health = z.enum(GATEWAY_HEALTH_VALUES);

export const gatewaySchema = z.object({
  id: z.string(),
  name: z.string(),
  health,
  lastResort: z.string().nullable(),
  lastSeenAt: z.string().nullable(),
  connectedSince: z.string().nullable(),
  rttMs: z.number().nullable(),
  activeStreams: z.number(),
  version: z.string().nullable(),
  labels: z.record(z.string(), z.string()),
  configuredLabels: z.record(z.string(), z.string()),
  draining: z.boolean(),
  remoteAddress: z.string().nullable(),
  certificateExpiresAt: z.string(),
  createdAt: z.string(),
  updatedAt: z.string(),
  connectedResourcesCount: z.number(),
});

export const consumerRefSchema = z.object({ kind: z.string(), id: z.string(), name: z.string() });
/** A connected-resources list: what the caller's role may see, and how many it may not. */
export const seenConsumersSchema = z.object({
  items: z.array(consumerRefSchema),
  hidden: z
    .number()
    .int()
    .describe('Resources using it that your role may not see (not named: a count only)'),
});

/** A pool by id or by name, wherever a pool is named (the CLI speaks names). */
export const poolRef = (field: string) =>
  z
    .string()
    .regex(
      /^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[a-z0-9-]{1,32})$/,
      `${field} must hold pool ids (UUIDs) or pool names (e.g. "dc1-pool")`,
    );
