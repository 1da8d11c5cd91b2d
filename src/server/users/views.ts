import { z } from 'zod';
import type { PendingInvitation } from './service.js';

/** A person's pending invitation as the API shows it (login answer, /me, /me/invitations). */
export const pendingInvitationSchema = z.object({
  id: z.string(),
  organization: z.object({ id: z.string(), name: z.string() }),
  role: z.string(),
  invitedBy: z.string().nullable(),
  createdAt: z.string(),
  expiresAt: z.string(),
});
/** Dates as ISO strings, the way the schema above lists them. */
export const pendingInvitation = (i: PendingInvitation) => ({
  ...i,
  createdAt: i.createdAt.toISOString(),
  expiresAt: i.expiresAt.toISOString(),
});
