/**
 * Control stream messages: newline-delimited JSON on the long-lived `POST /control` stream.
 * Both ends validate what they receive and ignore unknown message types, so either side can be
 * upgraded first.
 */
import { z } from 'zod';

export const HealthCheckResultSchema = z.object({
  target: z.string(),
  ok: z.boolean(),
  connectMs: z.number().optional(),
  error: z.string().optional(),
  checkedAt: z.number(),
});
export type HealthCheckResult = z.infer<typeof HealthCheckResultSchema>;

export const GatewayStatusSchema = z.object({
  type: z.literal('status'),
  version: z.string(),
  protocol: z.number().int(),
  activeStreams: z.number().int().nonnegative(),
  labels: z.record(z.string(), z.string()),
  draining: z.boolean(),
  healthChecks: z.array(HealthCheckResultSchema).optional(),
});
export type GatewayStatus = z.infer<typeof GatewayStatusSchema>;

export const ProbeResultSchema = z.object({
  type: z.literal('probe-result'),
  id: z.string(),
  ok: z.boolean(),
  connectMs: z.number().optional(),
  error: z.string().optional(),
});
export type ProbeResult = z.infer<typeof ProbeResultSchema>;

export const GatewayMessageSchema = z.discriminatedUnion('type', [
  GatewayStatusSchema,
  ProbeResultSchema,
]);
export type GatewayMessage = z.infer<typeof GatewayMessageSchema>;

export const DrainRequestSchema = z.object({ type: z.literal('drain'), draining: z.boolean() });
export type DrainRequest = z.infer<typeof DrainRequestSchema>;

/** TCP connect test from the gateway; subject to the gateway's allowlist. */
export const ProbeRequestSchema = z.object({
  type: z.literal('probe'),
  id: z.string(),
  host: z.string(),
  port: z.number().int().min(1).max(65535),
  timeoutMs: z.number().int().positive(),
});
export type ProbeRequest = z.infer<typeof ProbeRequestSchema>;

/** Targets the gateway connect-tests every status interval (pool health check targets). */
export const ConfigRequestSchema = z.object({
  type: z.literal('config'),
  healthCheckTargets: z.array(z.string()),
});
export type ConfigRequest = z.infer<typeof ConfigRequestSchema>;

/**
 * Cancels a CONNECT stream by HTTP/2 stream id when the platform already sent END_STREAM (so it
 * cannot use the abort trailer) and must not send RST_STREAM (DESIGN §2 trap 1).
 */
export const CancelRequestSchema = z.object({
  type: z.literal('cancel'),
  streamId: z.number().int().positive(),
});
export type CancelRequest = z.infer<typeof CancelRequestSchema>;

export const PlatformMessageSchema = z.discriminatedUnion('type', [
  DrainRequestSchema,
  CancelRequestSchema,
  ProbeRequestSchema,
  ConfigRequestSchema,
]);
export type PlatformMessage = z.infer<typeof PlatformMessageSchema>;

const MAX_LINE_BYTES = 256 * 1024;

/**
 * Splits a byte stream into JSON values, one per line. Returns a feed function. A line longer
 * than MAX_LINE_BYTES is a protocol violation reported through onError.
 */
export function createLineDecoder(
  onValue: (value: unknown) => void,
  onError: (error: Error) => void,
): (chunk: Buffer) => void {
  let pending = '';
  return (chunk) => {
    pending += chunk.toString('utf8');
    let newline = pending.indexOf('\n');
    while (newline !== -1) {
      const line = pending.slice(0, newline).trim();
      pending = pending.slice(newline + 1);
      if (line) {
        try {
          onValue(JSON.parse(line));
        } catch (error) {
          onError(error instanceof Error ? error : new Error(String(error)));
        }
      }
      newline = pending.indexOf('\n');
    }
    if (pending.length > MAX_LINE_BYTES) {
      pending = '';
      onError(new Error('control line too long'));
    }
  };
}

export function encodeLine(message: GatewayMessage | PlatformMessage): string {
  return `${JSON.stringify(message)}\n`;
}
