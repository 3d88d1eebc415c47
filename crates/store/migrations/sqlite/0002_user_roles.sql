-- Users get a role: what they may do through the admin API with a key of their own, within
-- their team or organization (gateway_admin, org_admin, team_admin, member, viewer; see
-- portcullis_types::Role). Existing users become members, the least privilege that can still
-- manage its own keys. The store writes only known role names and refuses to read back any
-- other (StoreError::Invalid), so no CHECK constraint: adding a role later needs no table
-- rebuild on SQLite.

ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'member';
