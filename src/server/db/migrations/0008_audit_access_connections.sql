-- Pairing an access connection's connect with its disconnect by connectionId: at every start the
-- platform looks for connects of the last 30 days without a disconnect (connections a crash left
-- open, audit/lost-connections.ts). Partial: only the two access events are indexed, so other
-- audit writes pay nothing, and the sweep reads neither the whole log nor a row per event.
CREATE INDEX audit_logs_access_connect_idx ON audit_logs (org_id, created_at)
  WHERE event = 'access.connect';
CREATE INDEX audit_logs_access_disconnect_idx ON audit_logs (org_id, (metadata ->> 'connectionId'))
  WHERE event = 'access.disconnect';
