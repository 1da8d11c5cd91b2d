/**
 * Where an enrolled gateway's tunnel is: `POST {platform}/api/v1/gateways/tunnel`. An agent
 * started with a new `--platform` (the platform moved: restored on another host, new ports)
 * asks it for its current tunnel address instead of dialing the one it got at enrollment.
 *
 * The API has no client certificates, so the gateway proves its identity the way TLS would:
 * it sends its certificate and a signature, made with its private key, over a fresh timestamp.
 * The platform answers only for a certificate it issued to a gateway it still has.
 */
import { z } from 'zod';

export const TUNNEL_LOOKUP_PATH = '/api/v1/gateways/tunnel';

/** How far the signed timestamp may be from the platform's clock. */
export const TUNNEL_LOOKUP_SKEW_MS = 10 * 60_000;

export const TunnelLookupRequestSchema = z.strictObject({
  /** PEM gateway certificate (as in the agent's state). */
  certificate: z.string().min(1, 'certificate is required').max(16_384, 'certificate is too long'),
  /** ISO 8601, signed with the certificate's key. */
  timestamp: z.string().min(1).max(64),
  /** base64 ECDSA (SHA-256, DER) signature of tunnelLookupMessage(). */
  signature: z.string().min(1).max(1024),
});
export type TunnelLookupRequest = z.infer<typeof TunnelLookupRequestSchema>;

export const TunnelLookupResponseSchema = z.object({
  gatewayId: z.string(),
  name: z.string(),
  /** `host:port` of the platform's tunnel listener now. */
  tunnelAddress: z.string(),
});
export type TunnelLookupResponse = z.infer<typeof TunnelLookupResponseSchema>;

/** What is signed: bound to this purpose and gateway, so no other signature can be replayed. */
export function tunnelLookupMessage(orgId: string, gatewayId: string, timestamp: string): Buffer {
  return Buffer.from(`gatepool-tunnel-lookup\n${orgId}\n${gatewayId}\n${timestamp}`);
}
