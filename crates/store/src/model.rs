//! The stored entities, what creating and updating them takes, and how lists are filtered and
//! paged. Plain serde types with no database in them, so the admin API and the in-memory key
//! table can use them without knowing the backend.
//!
//! Secrets never print: `Debug` of a key or a credential shows the length of each digest,
//! ciphertext and wrapped key, never the bytes.
//!
//! Organizations, teams, users and keys each carry their quotas: rate limits
//! ([`LimitRules`]) and money budgets ([`BudgetSpec`]), empty when they have none. All the
//! scopes of a request apply at once, so a narrower scope only narrows what a wider one allows.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

pub use portcullis_types::{BudgetPeriod, BudgetSpec, LimitRules, Role};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// A new id: a UUIDv7 string. Its first 48 bits are the creation time in milliseconds, so ids
/// sort (as text too) in creation order and `after`-id pagination walks a stable order.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The current time as the store keeps it: UTC, truncated to microseconds (PostgreSQL's
/// precision), so a value written and read back compares equal on every backend.
pub fn now() -> OffsetDateTime {
    normalize(OffsetDateTime::now_utc())
}

/// A timestamp as the store keeps it: UTC, truncated to whole microseconds.
pub fn normalize(t: OffsetDateTime) -> OffsetDateTime {
    let t = t.to_offset(time::UtcOffset::UTC);
    let micros = t.microsecond();
    t.replace_microsecond(micros).unwrap_or(t)
}

/// An organization: the top of the tenancy tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Organization {
    pub id: String,
    pub name: String,
    /// Rate limits; `{}` when there are none.
    pub limits: LimitRules,
    /// Money budgets, at most one per period; `[]` when there are none.
    pub budgets: Vec<BudgetSpec>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// A team: belongs to one organization; its name is unique within it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Team {
    pub id: String,
    pub org_id: String,
    pub name: String,
    /// Rate limits; `{}` when there are none.
    pub limits: LimitRules,
    /// Money budgets, at most one per period; `[]` when there are none.
    pub budgets: Vec<BudgetSpec>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// A user: a member of one team; the name is unique within the team. Its role says what it
/// may do through the admin API (with a key of its own), within its team or organization.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct User {
    pub id: String,
    pub team_id: String,
    pub name: String,
    pub email: Option<String>,
    pub role: Role,
    /// Rate limits; `{}` when there are none.
    pub limits: LimitRules,
    /// Money budgets, at most one per period; `[]` when there are none.
    pub budgets: Vec<BudgetSpec>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// A virtual key. The secret itself is never stored: `digest` is its keyed hash (HMAC-SHA256
/// with the server secret, computed by the caller). `public_id` is the recognisable, unique part
/// shown in the key itself, so a leaked key can be found and revoked.
#[derive(Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VirtualKey {
    pub id: String,
    pub public_id: String,
    #[serde(skip)]
    pub digest: Vec<u8>,
    pub name: String,
    pub team_id: String,
    pub user_id: Option<String>,
    /// Free-form metadata labels.
    pub labels: BTreeMap<String, String>,
    /// Model names or patterns this key may use; empty means no restriction.
    pub allowed_models: Vec<String>,
    /// Endpoints this key may call; empty means no restriction.
    pub allowed_endpoints: Vec<String>,
    /// Rate limits of the key itself; `{}` when there are none. They apply with those of its
    /// user, team and organization, so they can only narrow what those allow.
    pub limits: LimitRules,
    /// Money budgets of the key itself, at most one per period; `[]` when there are none.
    pub budgets: Vec<BudgetSpec>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    pub enabled: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    /// The digest before the last rotation, still accepted until `previous_valid_until`.
    #[serde(skip)]
    pub previous_digest: Option<Vec<u8>>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub previous_valid_until: Option<OffsetDateTime>,
}

impl VirtualKey {
    /// Whether the key may authenticate at `at`: enabled, not revoked, not expired.
    pub fn is_active(&self, at: OffsetDateTime) -> bool {
        self.enabled && self.revoked_at.is_none() && self.expires_at.is_none_or(|e| e > at)
    }

    /// The digest from before the last rotation, if its grace period still runs at `at`.
    pub fn previous_digest_at(&self, at: OffsetDateTime) -> Option<&[u8]> {
        match (&self.previous_digest, self.previous_valid_until) {
            (Some(d), Some(until)) if at < until => Some(d),
            _ => None,
        }
    }
}

impl fmt::Debug for VirtualKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VirtualKey")
            .field("id", &self.id)
            .field("public_id", &self.public_id)
            .field("digest_len", &self.digest.len())
            .field("name", &self.name)
            .field("team_id", &self.team_id)
            .field("user_id", &self.user_id)
            .field("labels", &self.labels)
            .field("allowed_models", &self.allowed_models)
            .field("allowed_endpoints", &self.allowed_endpoints)
            .field("limits", &self.limits)
            .field("budgets", &self.budgets)
            .field("expires_at", &self.expires_at)
            .field("enabled", &self.enabled)
            .field("created_at", &self.created_at)
            .field("revoked_at", &self.revoked_at)
            .field(
                "previous_digest_len",
                &self.previous_digest.as_ref().map(Vec::len),
            )
            .field("previous_valid_until", &self.previous_valid_until)
            .finish_non_exhaustive()
    }
}

/// A provider credential, encrypted at rest by envelope encryption: the secret's ciphertext
/// (under a data key of its own), that data key wrapped by a master key, and the id of that
/// master key. The store keeps these bytes opaque; sealing and opening is the caller's job,
/// which binds them to the row's id so that they do not open in another row.
#[derive(Clone, PartialEq, Eq)]
pub struct ProviderCredential {
    pub id: String,
    pub name: String,
    /// The provider type (`openai`, `anthropic`, `bedrock`, ...).
    pub provider: String,
    pub ciphertext: Vec<u8>,
    pub wrapped_key: Vec<u8>,
    /// The id of the master key that wrapped `wrapped_key`.
    pub key_id: String,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl fmt::Debug for ProviderCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderCredential")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("provider", &self.provider)
            .field("ciphertext_len", &self.ciphertext.len())
            .field("wrapped_key_len", &self.wrapped_key.len())
            .field("key_id", &self.key_id)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

/// What creating a virtual key takes; the store assigns the id and the timestamps.
#[derive(Clone, Default)]
pub struct NewKey {
    pub public_id: String,
    pub digest: Vec<u8>,
    pub name: String,
    pub team_id: String,
    pub user_id: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub allowed_models: Vec<String>,
    pub allowed_endpoints: Vec<String>,
    pub limits: LimitRules,
    pub budgets: Vec<BudgetSpec>,
    pub expires_at: Option<OffsetDateTime>,
    pub enabled: bool,
}

impl fmt::Debug for NewKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewKey")
            .field("public_id", &self.public_id)
            .field("digest_len", &self.digest.len())
            .field("name", &self.name)
            .field("team_id", &self.team_id)
            .finish_non_exhaustive()
    }
}

/// A change to a virtual key: each `Some` field is set, each `None` left as it is.
/// `expires_at: Some(None)` removes the expiry.
#[derive(Debug, Clone, Default)]
pub struct KeyUpdate {
    pub name: Option<String>,
    pub labels: Option<BTreeMap<String, String>>,
    pub allowed_models: Option<Vec<String>>,
    pub allowed_endpoints: Option<Vec<String>>,
    pub expires_at: Option<Option<OffsetDateTime>>,
    pub enabled: Option<bool>,
    /// New rate limits, replacing the old ones (`Some(LimitRules::default())` removes them).
    pub limits: Option<LimitRules>,
    /// New budgets, replacing the old ones (`Some(vec![])` removes them).
    pub budgets: Option<Vec<BudgetSpec>>,
}

/// What creating a provider credential takes. The caller chooses the id (a [`new_id`]) because
/// it seals the secret for that id before the row exists.
#[derive(Clone)]
pub struct NewCredential {
    pub id: String,
    pub name: String,
    pub provider: String,
    pub ciphertext: Vec<u8>,
    pub wrapped_key: Vec<u8>,
    pub key_id: String,
}

impl fmt::Debug for NewCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewCredential")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("provider", &self.provider)
            .field("ciphertext_len", &self.ciphertext.len())
            .field("wrapped_key_len", &self.wrapped_key.len())
            .field("key_id", &self.key_id)
            .finish()
    }
}

/// A change to a provider credential. A new secret replaces ciphertext, wrapped key and key id
/// together (they only make sense as a triple).
#[derive(Clone, Default)]
pub struct CredentialUpdate {
    pub name: Option<String>,
    pub secret: Option<EncryptedSecret>,
    /// Optimistic concurrency: when set, the change applies only if the row's `updated_at` is
    /// still this value (as read), and fails with [`StoreError::Conflict`](crate::StoreError)
    /// otherwise. Re-wrapping under a new master key uses it, so that it never overwrites a
    /// secret replaced since it was read.
    pub if_updated_at: Option<OffsetDateTime>,
}

impl fmt::Debug for CredentialUpdate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialUpdate")
            .field("name", &self.name)
            .field("secret", &self.secret)
            .field("if_updated_at", &self.if_updated_at)
            .finish()
    }
}

/// Ciphertext, wrapped data key and master key id of one secret.
#[derive(Clone)]
pub struct EncryptedSecret {
    pub ciphertext: Vec<u8>,
    pub wrapped_key: Vec<u8>,
    pub key_id: String,
}

impl fmt::Debug for EncryptedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptedSecret")
            .field("ciphertext_len", &self.ciphertext.len())
            .field("wrapped_key_len", &self.wrapped_key.len())
            .field("key_id", &self.key_id)
            .finish()
    }
}

/// One page of a list request: at most `limit` items with ids after `after`, in id order.
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    /// 1 to [`MAX_PAGE`]; 0 means [`DEFAULT_PAGE`].
    pub limit: u32,
    /// The `next_after` of the previous page; `None` for the first page.
    pub after: Option<String>,
}

pub const DEFAULT_PAGE: u32 = 100;
pub const MAX_PAGE: u32 = 1000;

impl PageRequest {
    pub fn first(limit: u32) -> Self {
        Self { limit, after: None }
    }

    /// The effective limit: clamped to 1..=MAX_PAGE, 0 meaning the default.
    pub fn effective_limit(&self) -> u32 {
        match self.limit {
            0 => DEFAULT_PAGE,
            n => n.min(MAX_PAGE),
        }
    }
}

/// A page of results, and the cursor of the next page when there may be one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_after: Option<String>,
}

impl<T> Page<T> {
    /// The same page with every item converted.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_after: self.next_after,
        }
    }

    /// Builds a page from up to `limit + 1` rows fetched: the extra row only says there is more.
    pub(crate) fn from_rows(mut items: Vec<T>, limit: u32, id: impl Fn(&T) -> &str) -> Self {
        let more = items.len() > limit as usize;
        items.truncate(limit as usize);
        let next_after = if more {
            items.last().map(|t| id(t).to_owned())
        } else {
            None
        };
        Self { items, next_after }
    }
}

/// Filters on organizations.
#[derive(Debug, Clone, Default)]
pub struct OrgFilter {
    pub name_prefix: Option<String>,
}

/// Filters on teams.
#[derive(Debug, Clone, Default)]
pub struct TeamFilter {
    pub org_id: Option<String>,
    pub name_prefix: Option<String>,
}

/// Filters on users.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    pub org_id: Option<String>,
    pub team_id: Option<String>,
    pub name_prefix: Option<String>,
}

/// Filters on virtual keys.
#[derive(Debug, Clone, Default)]
pub struct KeyFilter {
    pub org_id: Option<String>,
    pub team_id: Option<String>,
    pub user_id: Option<String>,
    pub enabled: Option<bool>,
    pub name_prefix: Option<String>,
}

/// Filters on provider credentials.
#[derive(Debug, Clone, Default)]
pub struct CredentialFilter {
    pub provider: Option<String>,
    pub name_prefix: Option<String>,
}

/// What creating an organization takes.
#[derive(Debug, Clone, Default)]
pub struct NewOrg {
    pub name: String,
    pub limits: LimitRules,
    pub budgets: Vec<BudgetSpec>,
}

/// A change to an organization.
#[derive(Debug, Clone, Default)]
pub struct OrgUpdate {
    pub name: Option<String>,
    /// New rate limits, replacing the old ones (`Some(LimitRules::default())` removes them).
    pub limits: Option<LimitRules>,
    /// New budgets, replacing the old ones (`Some(vec![])` removes them).
    pub budgets: Option<Vec<BudgetSpec>>,
}

/// What creating a team takes.
#[derive(Debug, Clone, Default)]
pub struct NewTeam {
    pub org_id: String,
    pub name: String,
    pub limits: LimitRules,
    pub budgets: Vec<BudgetSpec>,
}

/// A change to a team. A team stays in its organization.
#[derive(Debug, Clone, Default)]
pub struct TeamUpdate {
    pub name: Option<String>,
    /// New rate limits, replacing the old ones (`Some(LimitRules::default())` removes them).
    pub limits: Option<LimitRules>,
    /// New budgets, replacing the old ones (`Some(vec![])` removes them).
    pub budgets: Option<Vec<BudgetSpec>>,
}

/// What creating a user takes. The default role is `member`, as in the database.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub team_id: String,
    pub name: String,
    pub email: Option<String>,
    pub role: Role,
    pub limits: LimitRules,
    pub budgets: Vec<BudgetSpec>,
}

impl Default for NewUser {
    fn default() -> Self {
        Self {
            team_id: String::new(),
            name: String::new(),
            email: None,
            role: Role::Member,
            limits: LimitRules::default(),
            budgets: Vec::new(),
        }
    }
}

/// A change to a user; `email: Some(None)` clears the email. A user stays in its team.
#[derive(Debug, Clone, Default)]
pub struct UserUpdate {
    pub name: Option<String>,
    pub email: Option<Option<String>>,
    pub role: Option<Role>,
    /// New rate limits, replacing the old ones (`Some(LimitRules::default())` removes them).
    pub limits: Option<LimitRules>,
    /// New budgets, replacing the old ones (`Some(vec![])` removes them).
    pub budgets: Option<Vec<BudgetSpec>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_prints_lengths_not_secrets() {
        let key = VirtualKey {
            id: "k".into(),
            public_id: "pk".into(),
            digest: b"SECRET-DIGEST".to_vec(),
            name: "n".into(),
            team_id: "t".into(),
            user_id: None,
            labels: BTreeMap::new(),
            allowed_models: vec![],
            allowed_endpoints: vec![],
            limits: LimitRules::default(),
            budgets: vec![],
            expires_at: None,
            enabled: true,
            created_at: now(),
            updated_at: now(),
            revoked_at: None,
            previous_digest: Some(b"OLD-SECRET".to_vec()),
            previous_valid_until: None,
        };
        let cred = ProviderCredential {
            id: "c".into(),
            name: "n".into(),
            provider: "openai".into(),
            ciphertext: b"CIPHERTEXT".to_vec(),
            wrapped_key: b"WRAPPED".to_vec(),
            key_id: "k1".into(),
            created_at: now(),
            updated_at: now(),
        };
        let secret = EncryptedSecret {
            ciphertext: b"CIPHERTEXT".to_vec(),
            wrapped_key: b"WRAPPED".to_vec(),
            key_id: "k1".into(),
        };
        let printed = format!(
            "{key:?} {cred:?} {:?} {:?} {:?}",
            CredentialUpdate {
                secret: Some(secret),
                ..CredentialUpdate::default()
            },
            NewKey {
                digest: b"SECRET-DIGEST".to_vec(),
                ..NewKey::default()
            },
            NewCredential {
                id: "c".into(),
                name: "n".into(),
                provider: "p".into(),
                ciphertext: b"CIPHERTEXT".to_vec(),
                wrapped_key: b"WRAPPED".to_vec(),
                key_id: "k".into()
            },
        );
        for needle in ["SECRET", "CIPHERTEXT", "WRAPPED", "83, 69"] {
            assert!(!printed.contains(needle), "{needle} in {printed}");
        }
        assert!(printed.contains("digest_len: 13"));
        // Serialized keys leave the digests out too.
        let json = serde_json::to_string(&key).unwrap();
        assert!(!json.contains("digest\""), "{json}");
    }

    #[test]
    fn normalize_is_utc_micros() {
        let t = time::OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789)
            .unwrap()
            .to_offset(time::UtcOffset::from_hms(-5, 0, 0).unwrap());
        let n = normalize(t);
        assert_eq!(n.offset(), time::UtcOffset::UTC);
        assert_eq!(n.unix_timestamp_nanos(), 1_700_000_000_123_456_000);
    }

    #[test]
    fn page_limits() {
        assert_eq!(PageRequest::first(0).effective_limit(), DEFAULT_PAGE);
        assert_eq!(PageRequest::first(5000).effective_limit(), MAX_PAGE);
        let page = Page::from_rows(vec!["a", "b", "c"], 2, |s| s);
        assert_eq!(
            (page.items, page.next_after.as_deref()),
            (vec!["a", "b"], Some("b"))
        );
    }
}

/// The quotas of one organization, team or user, as [`Store::list_quotas`](crate::Store)
/// returns them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoredQuota {
    pub limits: LimitRules,
    pub budgets: Vec<BudgetSpec>,
}

impl StoredQuota {
    /// Whether there is neither a limit nor a budget.
    pub fn is_empty(&self) -> bool {
        self.limits.is_empty() && self.budgets.is_empty()
    }
}

/// The organizations, teams and users that have a quota, by id (those without one are absent),
/// for the in-memory key table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QuotaTable {
    pub orgs: HashMap<String, StoredQuota>,
    pub teams: HashMap<String, StoredQuota>,
    pub users: HashMap<String, StoredQuota>,
}

/// Filters on usage records; each given field must match exactly.
#[derive(Debug, Clone, Default)]
pub struct UsageFilter {
    pub request_id: Option<String>,
    pub key_name: Option<String>,
    pub model: Option<String>,
}

/// A dimension a usage summary groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UsageGroup {
    /// The UTC date the request started on.
    Day,
    /// The organization (a stored key's organization id, or the organization a token claims).
    Org,
    /// The team (a stored key's team id, or the team a token claims).
    Team,
    /// A stored key's user id.
    User,
    /// The key: a stored key by its id, a key of the config file (which has no id) by its name.
    Key,
    /// The model the client asked for.
    Model,
    /// The provider (deployment) that served, or last failed.
    Provider,
}

impl UsageGroup {
    pub const ALL: [UsageGroup; 7] = [
        Self::Day,
        Self::Org,
        Self::Team,
        Self::User,
        Self::Key,
        Self::Model,
        Self::Provider,
    ];

    /// The name the admin API and the CLI use.
    pub fn name(self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Org => "org",
            Self::Team => "team",
            Self::User => "user",
            Self::Key => "key",
            Self::Model => "model",
            Self::Provider => "provider",
        }
    }
}

impl std::str::FromStr for UsageGroup {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|g| g.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|g| g.name()).collect();
                format!("unknown group {s:?}: one of {}", names.join(", "))
            })
    }
}

/// What a usage summary counts: the records matching every given filter (each exact, and the
/// start time in `from..to`), grouped by `group_by`.
#[derive(Debug, Clone, Default)]
pub struct UsageQuery {
    /// Records that started at or after this time.
    pub from: Option<OffsetDateTime>,
    /// Records that started before this time.
    pub to: Option<OffsetDateTime>,
    pub org: Option<String>,
    pub team: Option<String>,
    pub user: Option<String>,
    pub key_id: Option<String>,
    pub model: Option<String>,
    pub provider: Option<String>,
    /// The dimensions of a row (a dimension named twice counts once). Rows are sorted by them:
    /// the day first, then the others in this order. Empty: one row, the total, if any record
    /// matches.
    pub group_by: Vec<UsageGroup>,
    /// At most this many rows (`None`: all): the first ones in row order. Ask for one more
    /// than you show to learn whether there were more.
    pub limit: Option<u32>,
}

/// One group of a usage summary. A dimension the query did not group by is `None`, as is one
/// the records lack (a key of the config file has no organization).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageRow {
    pub day: Option<time::Date>,
    pub org: Option<String>,
    pub team: Option<String>,
    pub user: Option<String>,
    pub key_id: Option<String>,
    /// With the key dimension: the key's name (for a stored key renamed within the period, the
    /// greatest of its names).
    pub key_name: Option<String>,
    pub model: Option<String>,
    pub provider: Option<String>,
    pub requests: u64,
    /// Requests answered with a status of 400 or above, or that did not complete (failed, or
    /// the client left).
    pub errors: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cached_tokens: u64,
    pub reasoning_tokens: u64,
    /// The cost in micro-dollars; requests without a price count 0.
    pub cost_micros: i64,
}
