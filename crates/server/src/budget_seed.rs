//! Seeds the budgets' counters from the store: when this process first uses a budget's window,
//! stage `admit` asks what the store's usage records say that window spent
//! ([`SpendSource`]), so a restart with the in-memory ledger does not forget a month's spend.
//! Records still in the usage journal (not yet in the store) are not counted: the seed can be
//! short by what the last second or so of traffic before a restart spent.

use std::sync::Arc;

use async_trait::async_trait;
use portcullis_core::pipeline::budgets::{SpendFilter, SpendSource};
use portcullis_store::{Store, UsageGroup, UsageQuery};
use time::OffsetDateTime;

/// The store as the budgets' [`SpendSource`].
#[derive(Debug)]
pub struct StoreSpend(pub Arc<dyn Store>);

#[async_trait]
impl SpendSource for StoreSpend {
    async fn spent_since(&self, filter: &SpendFilter, from: OffsetDateTime) -> Result<u64, String> {
        let mut query = UsageQuery {
            from: Some(from),
            org: filter.org.clone(),
            team: filter.team.clone(),
            user: filter.user.clone(),
            key_id: filter.key_id.clone(),
            model: filter.model.clone(),
            ..UsageQuery::default()
        };
        // A key of the config file has no id: its records are told apart by name.
        if filter.key_name.is_some() {
            query.group_by = vec![UsageGroup::Key];
        }
        let rows = self
            .0
            .usage_summary(&query)
            .await
            .map_err(|e| e.to_string())?;
        let micros: i64 = rows
            .iter()
            .filter(|r| match &filter.key_name {
                Some(name) => r.key_id.is_none() && r.key_name.as_ref() == Some(name),
                None => true,
            })
            .map(|r| r.cost_micros.max(0))
            .sum();
        Ok(u64::try_from(micros).unwrap_or(0).saturating_mul(1000))
    }
}
