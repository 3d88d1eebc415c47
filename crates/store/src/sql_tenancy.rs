//! Organizations, teams and users: the `Store` methods as portable SQL (see `sql.rs`), expanded
//! inside each backend's `impl Store`; and `list_quotas`, the quotas of all three at once for
//! the key table's refresh.

macro_rules! tenancy_methods {
    ($store:ty, $backend:literal) => { key_methods! { $store, $backend, {
        async fn create_org(&self, new: crate::NewOrg) -> crate::Result<crate::Organization> {
            let sql = format!(
                "INSERT INTO organizations (id, name, limits, budgets, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $5) RETURNING {}",
                crate::sql::ORG_COLS
            );
            let q = sqlx::query(&sql)
                .bind(crate::new_id())
                .bind(new.name)
                .bind(crate::sql::to_json(&new.limits)?)
                .bind(crate::sql::to_json(&new.budgets)?)
                .bind(ops::ts(crate::now()));
            ops::one(&self.pool, q, "organization", rows::org).await
        }

        async fn get_org(&self, id: &str) -> crate::Result<crate::Organization> {
            let sql = format!("SELECT {} FROM organizations WHERE id = $1", crate::sql::ORG_COLS);
            ops::one(&self.pool, sqlx::query(&sql).bind(id), "organization", rows::org).await
        }

        async fn update_org(
            &self,
            id: &str,
            update: crate::OrgUpdate,
        ) -> crate::Result<crate::Organization> {
            let sql = format!(
                "UPDATE organizations SET name = COALESCE($2, name), \
                 limits = COALESCE($3, limits), budgets = COALESCE($4, budgets), updated_at = $5 \
                 WHERE id = $1 RETURNING {}",
                crate::sql::ORG_COLS
            );
            let q = sqlx::query(&sql)
                .bind(id)
                .bind(update.name)
                .bind(crate::sql::opt_json(update.limits.as_ref())?)
                .bind(crate::sql::opt_json(update.budgets.as_ref())?)
                .bind(ops::ts(crate::now()));
            ops::one(&self.pool, q, "organization", rows::org).await
        }

        async fn delete_org(&self, id: &str) -> crate::Result<()> {
            ops::delete(&self.pool, "organizations", id, "organization").await
        }

        async fn list_orgs(
            &self,
            filter: &crate::OrgFilter,
            page: &crate::PageRequest,
        ) -> crate::Result<crate::Page<crate::Organization>> {
            let sql = format!(
                "SELECT {} FROM organizations WHERE ($1 IS NULL OR id > $1) \
                 AND ($2 IS NULL OR substr(name, 1, length($2)) = $2) ORDER BY id LIMIT $3",
                crate::sql::ORG_COLS
            );
            let q = sqlx::query(&sql)
                .bind(page.after.as_deref())
                .bind(filter.name_prefix.as_deref())
                .bind(crate::sql::fetch_limit(page));
            let items = ops::all(&self.pool, q, "organization", rows::org).await?;
            Ok(crate::Page::from_rows(items, page.effective_limit(), |o| &o.id))
        }

        async fn create_team(&self, new: crate::NewTeam) -> crate::Result<crate::Team> {
            let sql = format!(
                "INSERT INTO teams (id, org_id, name, limits, budgets, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING {}",
                crate::sql::TEAM_COLS
            );
            let q = sqlx::query(&sql)
                .bind(crate::new_id())
                .bind(new.org_id)
                .bind(new.name)
                .bind(crate::sql::to_json(&new.limits)?)
                .bind(crate::sql::to_json(&new.budgets)?)
                .bind(ops::ts(crate::now()));
            ops::one(&self.pool, q, "team", rows::team).await
        }

        async fn get_team(&self, id: &str) -> crate::Result<crate::Team> {
            let sql = format!("SELECT {} FROM teams WHERE id = $1", crate::sql::TEAM_COLS);
            ops::one(&self.pool, sqlx::query(&sql).bind(id), "team", rows::team).await
        }

        async fn update_team(
            &self,
            id: &str,
            update: crate::TeamUpdate,
        ) -> crate::Result<crate::Team> {
            let sql = format!(
                "UPDATE teams SET name = COALESCE($2, name), \
                 limits = COALESCE($3, limits), budgets = COALESCE($4, budgets), updated_at = $5 \
                 WHERE id = $1 RETURNING {}",
                crate::sql::TEAM_COLS
            );
            let q = sqlx::query(&sql)
                .bind(id)
                .bind(update.name)
                .bind(crate::sql::opt_json(update.limits.as_ref())?)
                .bind(crate::sql::opt_json(update.budgets.as_ref())?)
                .bind(ops::ts(crate::now()));
            ops::one(&self.pool, q, "team", rows::team).await
        }

        async fn delete_team(&self, id: &str) -> crate::Result<()> {
            ops::delete(&self.pool, "teams", id, "team").await
        }

        async fn list_teams(
            &self,
            filter: &crate::TeamFilter,
            page: &crate::PageRequest,
        ) -> crate::Result<crate::Page<crate::Team>> {
            let sql = format!(
                "SELECT {} FROM teams WHERE ($1 IS NULL OR id > $1) \
                 AND ($2 IS NULL OR org_id = $2) \
                 AND ($3 IS NULL OR substr(name, 1, length($3)) = $3) ORDER BY id LIMIT $4",
                crate::sql::TEAM_COLS
            );
            let q = sqlx::query(&sql)
                .bind(page.after.as_deref())
                .bind(filter.org_id.as_deref())
                .bind(filter.name_prefix.as_deref())
                .bind(crate::sql::fetch_limit(page));
            let items = ops::all(&self.pool, q, "team", rows::team).await?;
            Ok(crate::Page::from_rows(items, page.effective_limit(), |t| &t.id))
        }

        async fn create_user(&self, new: crate::NewUser) -> crate::Result<crate::User> {
            let sql = format!(
                "INSERT INTO users \
                 (id, team_id, name, email, role, limits, budgets, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING {}",
                crate::sql::USER_COLS
            );
            let q = sqlx::query(&sql)
                .bind(crate::new_id())
                .bind(new.team_id)
                .bind(new.name)
                .bind(new.email)
                .bind(new.role.as_str())
                .bind(crate::sql::to_json(&new.limits)?)
                .bind(crate::sql::to_json(&new.budgets)?)
                .bind(ops::ts(crate::now()));
            ops::one(&self.pool, q, "user", rows::user).await
        }

        async fn get_user(&self, id: &str) -> crate::Result<crate::User> {
            let sql = format!("SELECT {} FROM users WHERE id = $1", crate::sql::USER_COLS);
            ops::one(&self.pool, sqlx::query(&sql).bind(id), "user", rows::user).await
        }

        async fn update_user(
            &self,
            id: &str,
            update: crate::UserUpdate,
        ) -> crate::Result<crate::User> {
            let sql = format!(
                "UPDATE users SET name = COALESCE($2, name), \
                 email = CASE WHEN $3 THEN $4 ELSE email END, role = COALESCE($5, role), \
                 limits = COALESCE($6, limits), budgets = COALESCE($7, budgets), \
                 updated_at = $8 WHERE id = $1 RETURNING {}",
                crate::sql::USER_COLS
            );
            let q = sqlx::query(&sql)
                .bind(id)
                .bind(update.name)
                .bind(update.email.is_some())
                .bind(update.email.flatten())
                .bind(update.role.map(|r| r.as_str()))
                .bind(crate::sql::opt_json(update.limits.as_ref())?)
                .bind(crate::sql::opt_json(update.budgets.as_ref())?)
                .bind(ops::ts(crate::now()));
            ops::one(&self.pool, q, "user", rows::user).await
        }

        async fn delete_user(&self, id: &str) -> crate::Result<()> {
            ops::delete(&self.pool, "users", id, "user").await
        }

        async fn list_users(
            &self,
            filter: &crate::UserFilter,
            page: &crate::PageRequest,
        ) -> crate::Result<crate::Page<crate::User>> {
            let sql = format!(
                "SELECT {} FROM users WHERE ($1 IS NULL OR id > $1) \
                 AND ($2 IS NULL OR team_id IN (SELECT id FROM teams WHERE org_id = $2)) \
                 AND ($3 IS NULL OR team_id = $3) \
                 AND ($4 IS NULL OR substr(name, 1, length($4)) = $4) ORDER BY id LIMIT $5",
                crate::sql::USER_COLS
            );
            let q = sqlx::query(&sql)
                .bind(page.after.as_deref())
                .bind(filter.org_id.as_deref())
                .bind(filter.team_id.as_deref())
                .bind(filter.name_prefix.as_deref())
                .bind(crate::sql::fetch_limit(page));
            let items = ops::all(&self.pool, q, "user", rows::user).await?;
            Ok(crate::Page::from_rows(items, page.effective_limit(), |u| &u.id))
        }

        async fn list_quotas(&self) -> crate::Result<crate::QuotaTable> {
            // One statement for the three tables. Its conditions are those of the partial
            // indexes of migration 0006, word for word, so each table is read through its index.
            let sql = "SELECT 'org' AS scope, id, limits, budgets FROM organizations \
                 WHERE limits <> '{}' OR budgets <> '[]' \
                 UNION ALL SELECT 'team', id, limits, budgets FROM teams \
                 WHERE limits <> '{}' OR budgets <> '[]' \
                 UNION ALL SELECT 'user', id, limits, budgets FROM users \
                 WHERE limits <> '{}' OR budgets <> '[]'";
            let rows = ops::all(&self.pool, sqlx::query(sql), "quota", rows::quota).await?;
            let mut table = crate::QuotaTable::default();
            for (scope, id, quota) in rows {
                // A value written other than by the store (`{ }`, `{"rpm":null}`) passes the
                // text comparison; it is still no quota.
                if quota.is_empty() {
                    continue;
                }
                let map = match scope.as_str() {
                    "org" => &mut table.orgs,
                    "team" => &mut table.teams,
                    _ => &mut table.users,
                };
                map.insert(id, quota);
            }
            Ok(table)
        }
    } }
    };
}
