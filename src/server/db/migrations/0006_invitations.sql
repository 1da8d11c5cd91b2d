-- Invitations: adding a person to an organization is a pending membership they accept, so an
-- admin never learns whether an e-mail already has an account (users are platform-wide).
CREATE TABLE invitations (
  id uuid PRIMARY KEY,
  org_id uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  email text NOT NULL,
  role text NOT NULL,
  -- The account was made for this invitation with the password its admin chose: signing in
  -- with it is the acceptance. Never shown to the inviting org.
  created_user boolean NOT NULL DEFAULT false,
  -- SHA-256 of the code the inviting admin passes on: accepting needs it, so whoever controls
  -- an account with that e-mail (e.g. one another org's admin made) cannot join on their own.
  code_hash text NOT NULL,
  status text NOT NULL DEFAULT 'pending'
    CHECK (status IN ('pending', 'accepted', 'declined', 'revoked')),
  invited_by_type text NOT NULL,
  invited_by_id text,
  invited_by_name text,
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  expires_at timestamptz(3) NOT NULL,
  responded_at timestamptz(3)
);
-- One open invitation per person and organization.
CREATE UNIQUE INDEX invitations_pending_idx ON invitations (org_id, user_id) WHERE status = 'pending';
CREATE INDEX invitations_user_idx ON invitations (user_id, status);
CREATE INDEX invitations_org_idx ON invitations (org_id, created_at, id);
