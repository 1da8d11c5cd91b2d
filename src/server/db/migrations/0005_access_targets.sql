-- Access targets (DESIGN §6): a named host:port inside a private network that people and
-- services reach with `gatepool connect`, through a pinned gateway or a gateway pool.

CREATE TABLE access_targets (
  id uuid PRIMARY KEY,
  org_id uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  -- Slug, unique per org: what `gatepool connect NAME` is given.
  name text NOT NULL,
  host text NOT NULL,
  port integer NOT NULL CHECK (port BETWEEN 1 AND 65535),
  -- A hint for clients (psql connection string, URL); the platform relays bytes either way.
  protocol text NOT NULL CHECK (protocol IN ('tcp', 'postgres', 'http', 'kubernetes')),
  description text NOT NULL DEFAULT '',
  gateway_id uuid,
  gateway_pool_id uuid,
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  updated_at timestamptz(3) NOT NULL DEFAULT now(),
  CONSTRAINT access_targets_org_name_key UNIQUE (org_id, name),
  -- At most one of a pinned gateway or a pool (neither only where direct access is allowed).
  CONSTRAINT access_targets_one_ref_check CHECK (gateway_id IS NULL OR gateway_pool_id IS NULL),
  -- A gateway or pool in use cannot be deleted (the API answers 409 naming the targets first).
  FOREIGN KEY (org_id, gateway_id) REFERENCES gateways (org_id, id) ON DELETE RESTRICT,
  FOREIGN KEY (org_id, gateway_pool_id) REFERENCES gateway_pools (org_id, id) ON DELETE RESTRICT
);

CREATE INDEX access_targets_list_idx ON access_targets (org_id, created_at, id);
CREATE INDEX access_targets_gateway_idx ON access_targets (org_id, gateway_id) WHERE gateway_id IS NOT NULL;
CREATE INDEX access_targets_pool_idx ON access_targets (org_id, gateway_pool_id) WHERE gateway_pool_id IS NOT NULL;
