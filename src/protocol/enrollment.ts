/**
 * Enrollment contract: `POST {platform}/api/v1/gateways/enroll`, no session auth. The gateway
 * generates its key locally and sends only a CSR; the platform answers with the issued
 * certificate, the CA that issued it, the CA of the tunnel server and where to dial.
 */
import { z } from 'zod';

export const ENROLL_PATH = '/api/v1/gateways/enroll';

export const EnrollRequestSchema = z.object({
  token: z.string().min(1),
  name: z.string().min(1).max(64),
  csr: z.string().min(1),
  pools: z.array(z.string()).optional(),
});
export type EnrollRequest = z.infer<typeof EnrollRequestSchema>;

export const EnrollResponseSchema = z.object({
  gatewayId: z.string(),
  orgId: z.string(),
  /** PEM gateway client certificate (leaf). */
  certificate: z.string(),
  /** PEM org gateway CA that issued `certificate`. */
  caCertificate: z.string(),
  /** PEM CA of the tunnel server; the only CA the gateway trusts for the tunnel. */
  serverCaCertificate: z.string(),
  /** `host:port` of the platform's tunnel listener. */
  tunnelAddress: z.string(),
});
export type EnrollResponse = z.infer<typeof EnrollResponseSchema>;

/** Every platform API error has this shape (DESIGN §7). */
export const ApiErrorSchema = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    details: z.unknown().optional(),
  }),
});
export type ApiError = z.infer<typeof ApiErrorSchema>;
