-- Gateway pools (DESIGN §3, §5): named sets of gateways sharing network access.

CREATE TABLE gateway_pools (
  id uuid PRIMARY KEY,
  org_id uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  name text NOT NULL CHECK (name ~ '^[a-z0-9-]{1,32}$'),
  description text NOT NULL DEFAULT '',
  min_healthy integer NOT NULL DEFAULT 1 CHECK (min_healthy >= 0),
  health_check_target text,
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  updated_at timestamptz(3) NOT NULL DEFAULT now(),
  UNIQUE (org_id, name),
  UNIQUE (org_id, id)
);

-- org_id is repeated so a membership can only pair a pool and a gateway of the same org.
CREATE TABLE gateway_pool_memberships (
  org_id uuid NOT NULL,
  pool_id uuid NOT NULL,
  gateway_id uuid NOT NULL,
  weight integer NOT NULL DEFAULT 100 CHECK (weight BETWEEN 1 AND 10000),
  priority integer NOT NULL DEFAULT 0 CHECK (priority BETWEEN 0 AND 100),
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  PRIMARY KEY (pool_id, gateway_id),
  FOREIGN KEY (org_id, pool_id) REFERENCES gateway_pools (org_id, id) ON DELETE CASCADE,
  FOREIGN KEY (org_id, gateway_id) REFERENCES gateways (org_id, id) ON DELETE CASCADE
);

CREATE INDEX gateway_pool_memberships_gateway_idx ON gateway_pool_memberships (gateway_id);
