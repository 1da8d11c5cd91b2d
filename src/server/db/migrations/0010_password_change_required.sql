-- The account's password was chosen by someone else (the admin who invited the person, or the
-- operator who created an organization for them): until the person sets their own, a session
-- of theirs may only read who it is, change the password and sign out. Otherwise whoever chose
-- it could go on signing in as them, into every organization that person later joins.
ALTER TABLE users ADD COLUMN password_change_required boolean NOT NULL DEFAULT false;

-- Accounts made that way before this column, whose owner never changed the password since:
-- the password is still the one someone else chose.
UPDATE users u SET password_change_required = true
 WHERE (EXISTS (SELECT 1 FROM invitations i WHERE i.user_id = u.id AND i.created_user)
        OR EXISTS (SELECT 1 FROM audit_logs a
                    WHERE a.event = 'organization.create'
                      AND a.metadata->>'createdUser' = 'true'
                      AND a.metadata->>'adminEmail' = u.email))
   AND NOT EXISTS (SELECT 1 FROM audit_logs a
                    WHERE a.event = 'user.password-changed'
                      AND a.actor_type = 'user' AND a.actor_id = u.id::text);
