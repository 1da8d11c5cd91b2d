-- Why a session ended, where the session row cannot say: removing a person from an organization
-- deletes their sessions there (and, with no other organization left, the user row and every
-- session with it), so a later request with such a token could only hear "invalid or expired".
-- A row lives until the session would have expired; after that "expired" is the honest answer.
CREATE TABLE session_endings (
  token_hash text PRIMARY KEY,
  org_id uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  org_name text NOT NULL,
  reason text NOT NULL,
  ended_at timestamptz(3) NOT NULL DEFAULT now(),
  expires_at timestamptz(3) NOT NULL
);
CREATE INDEX session_endings_expires_idx ON session_endings (expires_at);
