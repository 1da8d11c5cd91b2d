-- Kubernetes auth for machine identities (DESIGN §6): one config per identity. A login's
-- service-account JWT is checked with the cluster's TokenReview API, reached directly or
-- through a gateway or gateway pool.

-- Lets the config pin its org to its identity's org with a composite foreign key.
ALTER TABLE identities ADD CONSTRAINT identities_org_id_id_key UNIQUE (org_id, id);

CREATE TABLE identity_kubernetes_auths (
  identity_id uuid PRIMARY KEY,
  org_id uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  -- https URL of the API server, e.g. https://10.0.0.1:6443
  kubernetes_host text NOT NULL,
  -- PEM bundle the API server certificate is verified against; '' = the system CAs.
  ca_cert text NOT NULL DEFAULT '',
  -- AES-256-GCM envelope (crypto/envelope.ts); NULL = review with the login JWT itself.
  token_reviewer_jwt_enc text,
  -- JSON arrays of strings; empty = any.
  allowed_namespaces jsonb NOT NULL DEFAULT '[]'::jsonb,
  allowed_names jsonb NOT NULL DEFAULT '[]'::jsonb,
  -- '' = no audience requirement.
  allowed_audience text NOT NULL DEFAULT '',
  access_token_ttl integer NOT NULL DEFAULT 3600 CHECK (access_token_ttl > 0),
  access_token_max_ttl integer NOT NULL DEFAULT 86400 CHECK (access_token_max_ttl > 0),
  gateway_id uuid,
  gateway_pool_id uuid,
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  updated_at timestamptz(3) NOT NULL DEFAULT now(),
  CONSTRAINT identity_kubernetes_auths_ttl_check CHECK (access_token_ttl <= access_token_max_ttl),
  -- At most one of a pinned gateway or a pool (neither = the cluster is reached directly).
  CONSTRAINT identity_kubernetes_auths_one_ref_check CHECK (gateway_id IS NULL OR gateway_pool_id IS NULL),
  FOREIGN KEY (org_id, identity_id) REFERENCES identities (org_id, id) ON DELETE CASCADE,
  -- A gateway or pool in use cannot be deleted (the API answers 409 naming the consumers first).
  FOREIGN KEY (org_id, gateway_id) REFERENCES gateways (org_id, id) ON DELETE RESTRICT,
  FOREIGN KEY (org_id, gateway_pool_id) REFERENCES gateway_pools (org_id, id) ON DELETE RESTRICT
);

CREATE INDEX identity_kubernetes_auths_gateway_idx ON identity_kubernetes_auths (org_id, gateway_id) WHERE gateway_id IS NOT NULL;
CREATE INDEX identity_kubernetes_auths_pool_idx ON identity_kubernetes_auths (org_id, gateway_pool_id) WHERE gateway_pool_id IS NOT NULL;
