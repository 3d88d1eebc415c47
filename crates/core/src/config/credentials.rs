//! Stored provider credentials in the config file: `${credential:NAME}` stands for the secret of
//! the credential `NAME` kept (encrypted) in the store, the way `${ENV_VAR}` stands for a
//! variable:
//!
//! ```yaml
//! providers:
//!   openai: { type: openai, api_key: "${credential:openai-prod}" }
//! ```
//!
//! A reference may only stand in a provider's secret fields ([`SECRET_FIELDS`] and `headers`),
//! so a secret never lands in a field whose validation message would echo it; the credential's
//! provider type must be the provider's `type`. The server decrypts the referenced credentials
//! with the `secrets:` master keys before it validates the file (two-phase loading, see
//! `Config::bootstrap`), and hands them in as [`Credentials`]. Without a store a reference is a
//! problem, as is a reference to a credential that does not exist or does not decrypt.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use secrecy::{ExposeSecret, SecretString};

use super::ConfigProblem;
use super::raw::RawProvider;

/// What follows `${` in a credential reference.
pub(super) const PREFIX: &str = "credential:";

/// The provider fields that may hold a stored credential (besides `headers.*`).
pub const SECRET_FIELDS: &[&str] = &[
    "api_key",
    "bearer_token",
    "access_key_id",
    "secret_access_key",
    "session_token",
    "credentials",
];

/// Longest credential name.
const MAX_NAME: usize = 128;

/// Whether `name` can be a credential's name: 1 to 128 ASCII letters, digits, `-`, `_` or `.`
/// (so that `${credential:NAME}` always reads back as written).
pub fn valid_credential_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Decrypted stored credentials by name, for resolving references. Only the credentials the
/// file references need to be in it; one that could not be decrypted is kept with the reason,
/// which is reported where it is referenced.
#[derive(Default)]
pub struct Credentials {
    entries: HashMap<String, Entry>,
}

struct Entry {
    /// The provider type the credential is for.
    provider: String,
    secret: Result<SecretString, String>,
}

impl fmt::Debug for Credentials {
    /// Names and provider types only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.entries.iter().map(|(k, e)| (k, &e.provider)))
            .finish()
    }
}

impl Credentials {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the decrypted secret of the credential `name`, for providers of type `provider`.
    pub fn insert(&mut self, name: String, provider: String, secret: SecretString) {
        self.entries.insert(
            name,
            Entry {
                provider,
                secret: Ok(secret),
            },
        );
    }

    /// Adds a credential that exists but cannot be used, with the reason (it must not contain
    /// the secret).
    pub fn insert_unusable(&mut self, name: String, provider: String, reason: String) {
        self.entries.insert(
            name,
            Entry {
                provider,
                secret: Err(reason),
            },
        );
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// One `${credential:NAME}` in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialUse {
    /// Where, e.g. `providers.openai.api_key`.
    pub path: String,
    /// The name of the provider entry it is in (empty when it is not under `providers`).
    pub provider: String,
    /// The credential's name.
    pub name: String,
}

impl CredentialUse {
    pub(super) fn new(path: &str, keys: &[String], name: &str) -> Self {
        Self {
            path: path.to_owned(),
            provider: match keys {
                [root, provider, ..] if root == "providers" => provider.clone(),
                _ => String::new(),
            },
            name: name.to_owned(),
        }
    }
}

/// How references are resolved in one load.
pub(super) enum CredentialMode<'a> {
    /// There are no stored credentials to read (no store, or no master key).
    Unavailable,
    /// Only collect which credentials are referenced (phase one), resolving each to "".
    Collect,
    /// Resolve from these decrypted credentials.
    Resolve(&'a Credentials),
}

impl<'a> CredentialMode<'a> {
    pub(super) fn from_credentials(credentials: Option<&'a Credentials>) -> Self {
        credentials.map_or(Self::Unavailable, Self::Resolve)
    }

    /// The secret of `name`, referenced at `path` (under the mapping keys `keys`).
    pub(super) fn resolve(
        &self,
        name: &str,
        path: &str,
        keys: &[String],
    ) -> Result<String, String> {
        if !valid_credential_name(name) {
            return Err(format!(
                "'{name}' is not a credential name (1 to {MAX_NAME} letters, digits, '-', '_', '.')"
            ));
        }
        if !may_hold_credential(keys) {
            return Err(format!(
                "a stored credential can only be used in a provider's {} or headers, not in {path}",
                SECRET_FIELDS.join(", ")
            ));
        }
        match self {
            Self::Unavailable => Err(format!(
                "${{credential:{name}}} reads a stored credential: configure a store and \
                 secrets.master_key (or secrets.master_key_file)"
            )),
            Self::Collect => Ok(String::new()),
            Self::Resolve(credentials) => match credentials.entries.get(name) {
                None => Err(format!(
                    "no stored credential is named '{name}' (create it with POST /admin/v1/credentials)"
                )),
                Some(Entry {
                    secret: Err(reason),
                    ..
                }) => Err(format!(
                    "the stored credential '{name}' cannot be used: {reason}"
                )),
                Some(Entry {
                    secret: Ok(secret), ..
                }) => Ok(secret.expose_secret().to_owned()),
            },
        }
    }

    /// The provider type of the stored credential `name`, when it is known.
    fn provider_of(&self, name: &str) -> Option<&str> {
        match self {
            Self::Resolve(credentials) => {
                credentials.entries.get(name).map(|e| e.provider.as_str())
            }
            _ => None,
        }
    }
}

/// Whether the value under these mapping keys may be a stored credential:
/// `providers.<name>.<secret field>`, `providers.<name>.entra.client_secret` or
/// `providers.<name>.headers.<header>`.
fn may_hold_credential(keys: &[String]) -> bool {
    match keys {
        [root, _, field] if root == "providers" => SECRET_FIELDS.contains(&field.as_str()),
        [root, _, group, field] if root == "providers" => {
            group == "headers" || (group == "entra" && field == "client_secret")
        }
        _ => false,
    }
}

/// Reports each credential used by a provider whose `type` is not the credential's provider
/// type (an Anthropic key given to an OpenAI provider, say).
pub(super) fn check_types(
    uses: &[CredentialUse],
    providers: &BTreeMap<String, RawProvider>,
    mode: &CredentialMode<'_>,
    problems: &mut Vec<ConfigProblem>,
) {
    for used in uses {
        let written = providers
            .get(&used.provider)
            .and_then(|p| p.kind.as_deref());
        if let (Some(kind), Some(stored)) = (written, mode.provider_of(&used.name))
            && kind != stored
        {
            problems.push(ConfigProblem::new(
                used.path.clone(),
                format!(
                    "the stored credential '{}' is for providers of type {stored}, not {kind}",
                    used.name
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::config::{AzureAuth, Config, ProviderConfig};

    fn stored() -> Credentials {
        let mut c = Credentials::new();
        c.insert(
            "oai".into(),
            "openai".into(),
            SecretString::from("sk-stored-oai"),
        );
        c.insert(
            "az".into(),
            "azure".into(),
            SecretString::from("entra-secret"),
        );
        c.insert(
            "hdr".into(),
            "openai_compatible".into(),
            SecretString::from("h-1"),
        );
        c.insert_unusable(
            "broken".into(),
            "openai".into(),
            "sealed under master key 0123456789abcdef, which is not configured".into(),
        );
        c
    }

    fn load(
        providers: &str,
        credentials: Option<&Credentials>,
    ) -> Result<Config, Vec<ConfigProblem>> {
        let vars = HashMap::from([("ENV_KEY".to_owned(), "from-env".to_owned())]);
        Config::from_yaml_with_credentials(&format!("providers:\n{providers}"), &vars, credentials)
    }

    fn problems(providers: &str, credentials: Option<&Credentials>) -> Vec<(String, String)> {
        load(providers, credentials)
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|p| (p.path, p.message))
            .collect()
    }

    #[test]
    fn references_resolve_to_stored_secrets() {
        let creds = stored();
        let cfg = load(
            r#"
  a: { type: openai, api_key: "${credential:oai}" }
  b: { type: openai_compatible, base_url: "http://127.0.0.1:9/v1", api_key: "${ENV_KEY}", headers: { X-Key: "Token ${credential:hdr}" } }
  c: { type: azure, endpoint: "https://r.openai.azure.com", entra: { tenant_id: t, client_id: c, client_secret: "${credential:az}" } }
  d: { type: openai, api_key: "$${credential:oai}" }
"#,
            Some(&creds),
        )
        .unwrap();
        let Some(ProviderConfig::OpenAi(a)) = cfg.providers.get("a") else {
            panic!("a")
        };
        assert_eq!(
            a.api_key.as_ref().map(|k| k.expose_secret()),
            Some("sk-stored-oai")
        );
        let Some(ProviderConfig::OpenAiCompatible(b)) = cfg.providers.get("b") else {
            panic!("b")
        };
        assert_eq!(b.headers[0].1.to_str().ok(), Some("Token h-1"));
        let Some(ProviderConfig::Azure(c)) = cfg.providers.get("c") else {
            panic!("c")
        };
        let AzureAuth::Entra(entra) = &c.auth else {
            panic!("entra")
        };
        assert_eq!(entra.client_secret.expose_secret(), "entra-secret");
        // An escaped reference is text.
        let Some(ProviderConfig::OpenAi(d)) = cfg.providers.get("d") else {
            panic!("d")
        };
        assert_eq!(
            d.api_key.as_ref().map(|k| k.expose_secret()),
            Some("${credential:oai}")
        );
        let uses: Vec<(&str, &str, &str)> = cfg
            .credential_uses
            .iter()
            .map(|u| (u.path.as_str(), u.provider.as_str(), u.name.as_str()))
            .collect();
        assert_eq!(
            uses,
            [
                ("providers.a.api_key", "a", "oai"),
                ("providers.b.headers.X-Key", "b", "hdr"),
                ("providers.c.entra.client_secret", "c", "az"),
            ]
        );
        assert!(!format!("{cfg:?}").contains("sk-stored-oai"));
    }

    #[test]
    fn unresolvable_references_are_problems_at_their_paths() {
        let creds = stored();
        let got = problems(
            r#"
  a: { type: openai, api_key: "${credential:missing}" }
  b: { type: openai, api_key: "${credential:broken}" }
  c: { type: anthropic, api_key: "${credential:oai}" }
  d: { type: openai, api_key: x, organization: "${credential:oai}" }
  e: { type: openai, api_key: "${credential:bad name}" }
"#,
            Some(&creds),
        );
        let paths: Vec<&str> = got.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "providers.a.api_key",
                "providers.b.api_key",
                "providers.d.organization",
                "providers.e.api_key",
                "providers.c.api_key",
            ],
            "{got:#?}"
        );
        assert!(got[0].1.contains("no stored credential is named 'missing'"));
        assert!(
            got[1]
                .1
                .contains("'broken' cannot be used: sealed under master key")
        );
        assert!(
            got[2]
                .1
                .starts_with("a stored credential can only be used in a provider's api_key")
        );
        assert!(got[3].1.contains("is not a credential name"));
        assert_eq!(
            got[4].1,
            "the stored credential 'oai' is for providers of type openai, not anthropic"
        );
        for (_, message) in &got {
            assert!(!message.contains("sk-stored-oai"), "{message}");
        }

        // Without stored credentials to read, a reference says what to configure.
        let got = problems(
            r#"  a: { type: openai, api_key: "${credential:oai}" }"#,
            None,
        );
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, "providers.a.api_key");
        assert!(
            got[0]
                .1
                .contains("configure a store and secrets.master_key"),
            "{got:?}"
        );
        // And outside providers, even with credentials, it is refused.
        let vars = HashMap::new();
        let outside = Config::from_yaml_with_credentials(
            "auth: { master_key: \"${credential:oai}\" }\n",
            &vars,
            Some(&creds),
        )
        .err()
        .unwrap_or_default();
        assert_eq!(outside.len(), 1);
        assert_eq!(outside[0].path, "auth.master_key");
    }

    #[test]
    fn names() {
        for good in ["openai-prod", "a", "team_1.key", &"x".repeat(128)] {
            assert!(valid_credential_name(good), "{good}");
        }
        for bad in ["", "with space", "a/b", "é", "a}b", &"x".repeat(129)] {
            assert!(!valid_credential_name(bad), "{bad}");
        }
    }

    #[test]
    fn where_a_credential_may_stand() {
        let keys = |p: &str| p.split('.').map(str::to_owned).collect::<Vec<_>>();
        for ok in [
            "providers.p.api_key",
            "providers.p.bearer_token",
            "providers.p.entra.client_secret",
            "providers.p.headers.X-Key",
            "providers.p.secret_access_key",
            "providers.p.credentials",
        ] {
            assert!(may_hold_credential(&keys(ok)), "{ok}");
        }
        for no in [
            "providers.p.base_url",
            "providers.p.type",
            "providers.p.entra.client_id",
            "auth.master_key",
            "logging.level",
            "providers.p",
        ] {
            assert!(!may_hold_credential(&keys(no)), "{no}");
        }
    }

    #[test]
    fn debug_shows_names_only() {
        let mut c = Credentials::new();
        c.insert("a".into(), "openai".into(), SecretString::from("sk-hidden"));
        c.insert_unusable("b".into(), "cohere".into(), "unknown key".into());
        let shown = format!("{c:?}");
        assert!(shown.contains("\"a\": \"openai\""), "{shown}");
        assert!(!shown.contains("sk-hidden"), "{shown}");
        assert_eq!(c.len(), 2);
    }
}
