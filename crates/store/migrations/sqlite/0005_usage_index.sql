-- Usage reports (`usage_summary`, the admin API's `GET /admin/v1/usage`) select a range of
-- start times, and an organization's or a team's report (which is what org and team admins
-- get) one organization or team within it. The summary's SQL names only the filters given, so
-- these indexes serve it.

CREATE INDEX usage_records_started ON usage_records (started_at);
CREATE INDEX usage_records_org_started ON usage_records (org, started_at);
CREATE INDEX usage_records_team_started ON usage_records (team, started_at);
