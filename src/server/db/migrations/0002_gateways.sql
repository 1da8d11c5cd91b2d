-- Gateways (DESIGN §1, §2, §4): per-org CA, enrollment tokens, enrolled gateways.

CREATE TABLE gateway_cas (
  org_id uuid PRIMARY KEY REFERENCES organizations(id) ON DELETE CASCADE,
  cert_pem text NOT NULL,
  -- AES-256-GCM envelope (crypto/envelope.ts); never stored in clear.
  key_enc text NOT NULL,
  created_at timestamptz(3) NOT NULL DEFAULT now()
);

CREATE TABLE gateways (
  id uuid PRIMARY KEY,
  org_id uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  name text NOT NULL,
  labels jsonb NOT NULL DEFAULT '{}'::jsonb,
  -- SHA-256 of the current client certificate; the tunnel hub refuses any other.
  cert_fingerprint text NOT NULL,
  cert_expires_at timestamptz(3) NOT NULL,
  -- Last persisted transition: never-connected | connected | disconnected.
  status text NOT NULL DEFAULT 'never-connected',
  draining boolean NOT NULL DEFAULT false,
  connected_at timestamptz(3),
  disconnected_at timestamptz(3),
  last_seen_at timestamptz(3),
  version text,
  enrolled_with_token_id uuid,
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  updated_at timestamptz(3) NOT NULL DEFAULT now(),
  UNIQUE (org_id, name),
  UNIQUE (org_id, id)
);

CREATE TABLE gateway_enrollment_tokens (
  id uuid PRIMARY KEY,
  org_id uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  name text NOT NULL,
  token_hash text NOT NULL UNIQUE,
  -- Pools the enrolled gateway joins (gateway pools issue); kept as given.
  pool_ids jsonb NOT NULL DEFAULT '[]'::jsonb,
  expires_at timestamptz(3) NOT NULL,
  used_at timestamptz(3),
  used_by_gateway_id uuid,
  revoked_at timestamptz(3),
  created_by_type text NOT NULL,
  created_by_id text,
  created_at timestamptz(3) NOT NULL DEFAULT now()
);

CREATE INDEX gateway_enrollment_tokens_org_idx ON gateway_enrollment_tokens (org_id, created_at DESC);
