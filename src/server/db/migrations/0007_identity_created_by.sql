-- Who created a machine identity, so an admin can find the identities a departing person made
-- (their tokens outlive that person's membership). Null for identities made before this column.
ALTER TABLE identities
  ADD COLUMN created_by_type text,
  ADD COLUMN created_by_id text,
  ADD COLUMN created_by_name text;
