//! Virtual keys and provider credentials: the `Store` methods as portable SQL (see `sql.rs`),
//! expanded inside each backend's `impl Store`.

macro_rules! key_methods {
    ($store:ty, $backend:literal, { $($tenancy:tt)* }) => {
        #[async_trait::async_trait]
        impl crate::Store for $store {
        fn backend(&self) -> &'static str {
            $backend
        }

        $($tenancy)*

        async fn create_key(&self, new: crate::NewKey) -> crate::Result<crate::VirtualKey> {
            let sql = format!(
                "INSERT INTO virtual_keys (id, public_id, digest, name, team_id, user_id, labels, \
                 allowed_models, allowed_endpoints, limits, budgets, expires_at, enabled, \
                 created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14) \
                 RETURNING {}",
                crate::sql::KEY_COLS
            );
            let q = sqlx::query(&sql)
                .bind(crate::new_id())
                .bind(new.public_id)
                .bind(new.digest)
                .bind(new.name)
                .bind(new.team_id)
                .bind(new.user_id)
                .bind(crate::sql::to_json(&new.labels)?)
                .bind(crate::sql::to_json(&new.allowed_models)?)
                .bind(crate::sql::to_json(&new.allowed_endpoints)?)
                .bind(crate::sql::to_json(&new.limits)?)
                .bind(crate::sql::to_json(&new.budgets)?)
                .bind(new.expires_at.map(ops::ts))
                .bind(new.enabled)
                .bind(ops::ts(crate::now()));
            ops::one(&self.pool, q, "key", rows::key).await
        }

        async fn get_key(&self, id: &str) -> crate::Result<crate::VirtualKey> {
            let sql = format!("SELECT {} FROM virtual_keys WHERE id = $1", crate::sql::KEY_COLS);
            ops::one(&self.pool, sqlx::query(&sql).bind(id), "key", rows::key).await
        }

        async fn get_key_by_public_id(&self, public_id: &str) -> crate::Result<crate::VirtualKey> {
            let sql =
                format!("SELECT {} FROM virtual_keys WHERE public_id = $1", crate::sql::KEY_COLS);
            ops::one(&self.pool, sqlx::query(&sql).bind(public_id), "key", rows::key).await
        }

        async fn update_key(
            &self,
            id: &str,
            update: crate::KeyUpdate,
        ) -> crate::Result<crate::VirtualKey> {
            let sql = format!(
                "UPDATE virtual_keys SET name = COALESCE($2, name), \
                 labels = COALESCE($3, labels), allowed_models = COALESCE($4, allowed_models), \
                 allowed_endpoints = COALESCE($5, allowed_endpoints), \
                 expires_at = CASE WHEN $6 THEN $7 ELSE expires_at END, \
                 enabled = COALESCE($8, enabled), limits = COALESCE($9, limits), \
                 budgets = COALESCE($10, budgets), updated_at = $11 WHERE id = $1 RETURNING {}",
                crate::sql::KEY_COLS
            );
            let q = sqlx::query(&sql)
                .bind(id)
                .bind(update.name)
                .bind(crate::sql::opt_json(update.labels.as_ref())?)
                .bind(crate::sql::opt_json(update.allowed_models.as_ref())?)
                .bind(crate::sql::opt_json(update.allowed_endpoints.as_ref())?)
                .bind(update.expires_at.is_some())
                .bind(update.expires_at.flatten().map(ops::ts))
                .bind(update.enabled)
                .bind(crate::sql::opt_json(update.limits.as_ref())?)
                .bind(crate::sql::opt_json(update.budgets.as_ref())?)
                .bind(ops::ts(crate::now()));
            ops::one(&self.pool, q, "key", rows::key).await
        }

        async fn delete_key(&self, id: &str) -> crate::Result<()> {
            ops::delete(&self.pool, "virtual_keys", id, "key").await
        }

        async fn list_keys(
            &self,
            filter: &crate::KeyFilter,
            page: &crate::PageRequest,
        ) -> crate::Result<crate::Page<crate::VirtualKey>> {
            let sql = format!(
                "SELECT {} FROM virtual_keys WHERE ($1 IS NULL OR id > $1) \
                 AND ($2 IS NULL OR team_id IN (SELECT id FROM teams WHERE org_id = $2)) \
                 AND ($3 IS NULL OR team_id = $3) AND ($4 IS NULL OR user_id = $4) \
                 AND ($5 IS NULL OR enabled = $5) \
                 AND ($6 IS NULL OR substr(name, 1, length($6)) = $6) ORDER BY id LIMIT $7",
                crate::sql::KEY_COLS
            );
            let q = sqlx::query(&sql)
                .bind(page.after.as_deref())
                .bind(filter.org_id.as_deref())
                .bind(filter.team_id.as_deref())
                .bind(filter.user_id.as_deref())
                .bind(filter.enabled)
                .bind(filter.name_prefix.as_deref())
                .bind(crate::sql::fetch_limit(page));
            let items = ops::all(&self.pool, q, "key", rows::key).await?;
            Ok(crate::Page::from_rows(items, page.effective_limit(), |k| &k.id))
        }

        async fn list_active_keys(
            &self,
            at: time::OffsetDateTime,
        ) -> crate::Result<Vec<crate::VirtualKey>> {
            let sql = format!(
                "SELECT {} FROM virtual_keys WHERE enabled = $1 AND revoked_at IS NULL \
                 AND (expires_at IS NULL OR expires_at > $2) ORDER BY id",
                crate::sql::KEY_COLS
            );
            let q = sqlx::query(&sql).bind(true).bind(ops::ts(at));
            ops::all(&self.pool, q, "key", rows::key).await
        }

        async fn revoke_key(
            &self,
            id: &str,
            at: time::OffsetDateTime,
        ) -> crate::Result<crate::VirtualKey> {
            let sql = format!(
                "UPDATE virtual_keys SET revoked_at = COALESCE(revoked_at, $2), updated_at = $3 \
                 WHERE id = $1 RETURNING {}",
                crate::sql::KEY_COLS
            );
            let q = sqlx::query(&sql).bind(id).bind(ops::ts(at)).bind(ops::ts(crate::now()));
            ops::one(&self.pool, q, "key", rows::key).await
        }

        async fn rotate_key(
            &self,
            id: &str,
            new_digest: Vec<u8>,
            grace_until: time::OffsetDateTime,
        ) -> crate::Result<crate::VirtualKey> {
            // The right-hand sides read the row as it was, so the old digest moves to
            // `previous_digest` in the same statement that replaces it.
            let sql = format!(
                "UPDATE virtual_keys SET previous_digest = digest, previous_valid_until = $3, \
                 digest = $2, updated_at = $4 WHERE id = $1 AND revoked_at IS NULL RETURNING {}",
                crate::sql::KEY_COLS
            );
            let q = sqlx::query(&sql)
                .bind(id)
                .bind(new_digest)
                .bind(ops::ts(grace_until))
                .bind(ops::ts(crate::now()));
            match ops::one(&self.pool, q, "key", rows::key).await {
                Err(crate::StoreError::NotFound { .. }) => {
                    // Either there is no such key, or it is revoked: tell which.
                    crate::Store::get_key(self, id).await?;
                    Err(crate::StoreError::Conflict { entity: "key", reason: "key is revoked" })
                }
                other => other,
            }
        }

        async fn create_credential(
            &self,
            new: crate::NewCredential,
        ) -> crate::Result<crate::ProviderCredential> {
            let sql = format!(
                "INSERT INTO provider_credentials \
                 (id, name, provider, ciphertext, wrapped_key, key_id, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING {}",
                crate::sql::CRED_COLS
            );
            let q = sqlx::query(&sql)
                .bind(new.id)
                .bind(new.name)
                .bind(new.provider)
                .bind(new.ciphertext)
                .bind(new.wrapped_key)
                .bind(new.key_id)
                .bind(ops::ts(crate::now()));
            ops::one(&self.pool, q, "credential", rows::credential).await
        }

        async fn get_credential(&self, id: &str) -> crate::Result<crate::ProviderCredential> {
            let sql =
                format!("SELECT {} FROM provider_credentials WHERE id = $1", crate::sql::CRED_COLS);
            let q = sqlx::query(&sql).bind(id);
            ops::one(&self.pool, q, "credential", rows::credential).await
        }

        async fn update_credential(
            &self,
            id: &str,
            update: crate::CredentialUpdate,
        ) -> crate::Result<crate::ProviderCredential> {
            let sql = format!(
                "UPDATE provider_credentials SET name = COALESCE($2, name), \
                 ciphertext = COALESCE($3, ciphertext), wrapped_key = COALESCE($4, wrapped_key), \
                 key_id = COALESCE($5, key_id), updated_at = $6 \
                 WHERE id = $1 AND ($7 IS NULL OR updated_at = $7) RETURNING {}",
                crate::sql::CRED_COLS
            );
            let (ciphertext, wrapped_key, key_id) = match update.secret {
                Some(s) => (Some(s.ciphertext), Some(s.wrapped_key), Some(s.key_id)),
                None => (None, None, None),
            };
            let conditional = update.if_updated_at.is_some();
            let q = sqlx::query(&sql)
                .bind(id)
                .bind(update.name)
                .bind(ciphertext)
                .bind(wrapped_key)
                .bind(key_id)
                .bind(ops::ts(crate::now()))
                .bind(update.if_updated_at.map(ops::ts));
            match ops::one(&self.pool, q, "credential", rows::credential).await {
                Err(crate::StoreError::NotFound { .. }) if conditional => {
                    // Either there is no such credential, or it changed since it was read.
                    crate::Store::get_credential(self, id).await?;
                    Err(crate::StoreError::Conflict {
                        entity: "credential",
                        reason: "changed since it was read",
                    })
                }
                other => other,
            }
        }

        async fn delete_credential(&self, id: &str) -> crate::Result<()> {
            ops::delete(&self.pool, "provider_credentials", id, "credential").await
        }

        async fn list_credentials(
            &self,
            filter: &crate::CredentialFilter,
            page: &crate::PageRequest,
        ) -> crate::Result<crate::Page<crate::ProviderCredential>> {
            let sql = format!(
                "SELECT {} FROM provider_credentials WHERE ($1 IS NULL OR id > $1) \
                 AND ($2 IS NULL OR provider = $2) \
                 AND ($3 IS NULL OR substr(name, 1, length($3)) = $3) ORDER BY id LIMIT $4",
                crate::sql::CRED_COLS
            );
            let q = sqlx::query(&sql)
                .bind(page.after.as_deref())
                .bind(filter.provider.as_deref())
                .bind(filter.name_prefix.as_deref())
                .bind(crate::sql::fetch_limit(page));
            let items = ops::all(&self.pool, q, "credential", rows::credential).await?;
            Ok(crate::Page::from_rows(items, page.effective_limit(), |c| &c.id))
        }

        async fn close(&self) {
            self.pool.close().await;
        }
        }
    };
}
