-- Quotas (PostgreSQL): the rate limits (`limits`, portcullis_types::LimitRules: rpm, tpm,
-- max_concurrent) and money budgets (`budgets`, a list of portcullis_types::BudgetSpec) of
-- each organization, team, user and virtual key, as JSON text like labels: the store never
-- queries inside them.
--
-- The empty values are the defaults, so existing rows have no quota; the store writes exactly
-- '{}' and '[]' for "none" (serde_json of the empty values), which the partial indexes below and
-- `list_quotas` rely on.
--
-- The key table's refresh (every second, on every replica) reads the quotas of organizations,
-- teams and users that have one (`list_quotas`); the partial indexes keep that read
-- proportional to the rows with a quota, not to the size of the tables. Keys need none: their
-- quotas come with the active keys' rows.

ALTER TABLE organizations ADD COLUMN limits TEXT NOT NULL DEFAULT '{}';
ALTER TABLE organizations ADD COLUMN budgets TEXT NOT NULL DEFAULT '[]';
ALTER TABLE teams ADD COLUMN limits TEXT NOT NULL DEFAULT '{}';
ALTER TABLE teams ADD COLUMN budgets TEXT NOT NULL DEFAULT '[]';
ALTER TABLE users ADD COLUMN limits TEXT NOT NULL DEFAULT '{}';
ALTER TABLE users ADD COLUMN budgets TEXT NOT NULL DEFAULT '[]';
ALTER TABLE virtual_keys ADD COLUMN limits TEXT NOT NULL DEFAULT '{}';
ALTER TABLE virtual_keys ADD COLUMN budgets TEXT NOT NULL DEFAULT '[]';

CREATE INDEX organizations_quota ON organizations (id) WHERE limits <> '{}' OR budgets <> '[]';
CREATE INDEX teams_quota ON teams (id) WHERE limits <> '{}' OR budgets <> '[]';
CREATE INDEX users_quota ON users (id) WHERE limits <> '{}' OR budgets <> '[]';
