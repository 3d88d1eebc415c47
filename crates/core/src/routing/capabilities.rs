//! What each upstream model can do, for filtering deployments before the strategy orders them
//! (stage `plan`, [`super::filter`]). The gateway ships a catalog (`data/capabilities.yaml`,
//! compiled into the binary): per model its context window, its largest output, and whether it
//! accepts images, tools, a `json_schema` response format and streaming, with the page each
//! entry comes from. The config overrides or adds models (`capabilities.models`), and each
//! deployment may override its own model's figures (`models.<name>.deployments[].capabilities`).
//!
//! Every figure is optional: one the catalog does not know constrains nothing, so a model the
//! catalog lacks (a self-hosted OpenAI-compatible server, say) accepts every request, as it did
//! before the filter existed. Overrides merge field by field: an override that sets only
//! `vision: false` keeps the catalog's context window.
//!
//! A served model name finds its entry as prices do ([`crate::pricing`]): by exact name or
//! alias, then without a dated suffix, then without a Bedrock cross-region prefix. Names with a
//! `*` are patterns (`my-llama-*`), tried after the exact names, the longest pattern first. The
//! config's entries are looked up first and merged over the catalog's. Runtime snapshots resolve
//! every deployment's capabilities once, when they are built: the request path never looks a
//! name up.

use std::collections::HashMap;

use serde::Deserialize;

use crate::auth::ModelPattern;
use crate::pricing::{RawCatalog, by_served_name};

/// The catalog shipped with the gateway.
const BUILTIN: &str = include_str!("../../data/capabilities.yaml");

/// What a model can do; `None`: not known, so not a constraint. Read as written in the
/// catalog and in the config.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct Capabilities {
    /// Tokens of prompt and output together.
    pub context_window: Option<u64>,
    /// The largest output (`max_tokens`) the model accepts.
    pub max_output_tokens: Option<u64>,
    /// Images in the messages.
    pub vision: Option<bool>,
    /// Tool (function) definitions.
    pub tools: Option<bool>,
    /// `response_format: {type: json_schema}`, natively or as the gateway's translation carries
    /// it to the provider.
    pub json_schema: Option<bool>,
    /// `stream: true`.
    pub streaming: Option<bool>,
}

impl Capabilities {
    /// `self`'s known figures, and `base`'s where `self` knows none.
    pub fn over(self, base: Capabilities) -> Capabilities {
        Capabilities {
            context_window: self.context_window.or(base.context_window),
            max_output_tokens: self.max_output_tokens.or(base.max_output_tokens),
            vision: self.vision.or(base.vision),
            tools: self.tools.or(base.tools),
            json_schema: self.json_schema.or(base.json_schema),
            streaming: self.streaming.or(base.streaming),
        }
    }
}

/// Why the shipped catalog (or one in its format) cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the capability catalog is invalid: {0}")]
pub struct CatalogError(String);

/// Entries by exact name, and patterns (longest first).
#[derive(Debug, Clone, Default)]
struct Layer {
    by_name: HashMap<String, Capabilities>,
    patterns: Vec<(ModelPattern, usize, Capabilities)>,
}

impl Layer {
    fn insert(&mut self, name: &str, caps: Capabilities) -> Option<Capabilities> {
        if name.contains('*') {
            let pattern = ModelPattern::new(name);
            if let Some(slot) = self.patterns.iter_mut().find(|(p, _, _)| *p == pattern) {
                return Some(std::mem::replace(&mut slot.2, caps));
            }
            self.patterns.push((pattern, name.len(), caps));
            // Stable: patterns of one length keep their order.
            self.patterns.sort_by_key(|p| std::cmp::Reverse(p.1));
            None
        } else {
            self.by_name.insert(name.to_owned(), caps)
        }
    }

    fn find(&self, model: &str) -> Option<Capabilities> {
        by_served_name(&self.by_name, model).copied().or_else(|| {
            self.patterns
                .iter()
                .find(|(p, _, _)| p.matches(model))
                .map(|(_, _, caps)| *caps)
        })
    }
}

/// The capabilities the gateway knows: the shipped catalog, with the config's entries over it.
#[derive(Debug, Clone, Default)]
pub struct CapabilityCatalog {
    version: String,
    shipped: Layer,
    config: Layer,
}

#[derive(Deserialize)]
struct RawEntry {
    #[expect(
        dead_code,
        reason = "declared so that a typo in the file is refused; read by people"
    )]
    provider: String,
    model: String,
    #[serde(flatten)]
    capabilities: Capabilities,
    #[expect(
        dead_code,
        reason = "declared so that a typo in the file is refused; read by people"
    )]
    source: String,
    #[expect(
        dead_code,
        reason = "declared so that a typo in the file is refused; read by people"
    )]
    as_of: String,
    #[serde(default)]
    aliases: Vec<String>,
    /// Keys no field takes: a typo, refused (`deny_unknown_fields` does not work beside
    /// `flatten`).
    #[serde(flatten)]
    unknown: HashMap<String, serde::de::IgnoredAny>,
}

impl CapabilityCatalog {
    /// The catalog shipped with the gateway.
    pub fn builtin() -> Result<Self, CatalogError> {
        Self::from_yaml(BUILTIN)
    }

    /// A catalog in the shipped file's format.
    pub fn from_yaml(text: &str) -> Result<Self, CatalogError> {
        let raw: RawCatalog<RawEntry> =
            serde_yaml_ng::from_str(text).map_err(|e| CatalogError(e.to_string()))?;
        let mut shipped = Layer::default();
        for e in raw.models {
            if let Some(key) = e.unknown.keys().next() {
                return Err(CatalogError(format!("{}: unknown key '{key}'", e.model)));
            }
            for name in std::iter::once(e.model).chain(e.aliases) {
                if shipped.insert(&name, e.capabilities).is_some() {
                    return Err(CatalogError(format!("'{name}' is listed twice")));
                }
            }
        }
        Ok(Self {
            version: raw.version,
            shipped,
            config: Layer::default(),
        })
    }

    /// The catalog's version (the date of its last update).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// This catalog with the config's entry for `model` (a name or a `*` pattern), replacing
    /// an earlier config entry of that name; merged over the shipped entry when looked up.
    pub fn with_override(mut self, model: &str, caps: Capabilities) -> Self {
        self.config.insert(model, caps);
        self
    }

    /// The capabilities of the served model `model`: the config's entry over the catalog's;
    /// nothing known when neither has one.
    pub fn of(&self, model: &str) -> Capabilities {
        let shipped = self.shipped.find(model).unwrap_or_default();
        self.config
            .find(model)
            .map_or(shipped, |config| config.over(shipped))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    fn entries() -> Vec<(String, String, String, Capabilities)> {
        #[derive(Deserialize)]
        struct File {
            models: Vec<Entry>,
        }
        #[derive(Deserialize)]
        struct Entry {
            provider: String,
            model: String,
            source: String,
            context_window: Option<u64>,
            max_output_tokens: Option<u64>,
        }
        let file: File = serde_yaml_ng::from_str(BUILTIN).unwrap();
        file.models
            .into_iter()
            .map(|e| {
                let caps = Capabilities {
                    context_window: e.context_window,
                    max_output_tokens: e.max_output_tokens,
                    ..Capabilities::default()
                };
                (e.provider, e.model, e.source, caps)
            })
            .collect()
    }

    #[test]
    fn the_shipped_catalog_loads_and_every_entry_is_sourced_and_consistent() {
        let catalog = CapabilityCatalog::builtin().unwrap();
        assert_eq!(catalog.version().len(), 10);
        let entries = entries();
        assert!(entries.len() > 30, "{}", entries.len());
        for (_, model, source, caps) in &entries {
            assert!(source.starts_with("https://"), "{model}");
            assert!(caps.context_window.is_some(), "{model}: a context window");
            if let (Some(window), Some(out)) = (caps.context_window, caps.max_output_tokens) {
                assert!(out <= window, "{model}: output within the window");
            }
        }
        for provider in crate::pricing::SHIPPED_PROVIDERS {
            assert!(
                entries.iter().any(|(p, ..)| p == provider),
                "no {provider} models"
            );
        }
    }

    #[test]
    fn served_names_find_their_entry() {
        let catalog = CapabilityCatalog::builtin().unwrap();
        let window = |m: &str| catalog.of(m).context_window;
        assert_eq!(window("gpt-4o"), Some(128_000));
        assert_eq!(window("gpt-4o-2024-08-06"), Some(128_000));
        assert_eq!(catalog.of("gpt-4o-2024-08-06").json_schema, Some(true));
        // A snapshot listed on its own wins over its base name.
        assert_eq!(catalog.of("gpt-4o-2024-05-13").json_schema, Some(false));
        assert_eq!(catalog.of("gpt-3.5-turbo").vision, Some(false));
        assert_eq!(
            window("us.anthropic.claude-sonnet-4-5-20250929-v1:0"),
            Some(200_000)
        );
        assert_eq!(catalog.of("claude-sonnet-4-5-20250929").vision, Some(true));
        assert_eq!(window("gemini-2.5-pro"), Some(1_048_576));
        assert_eq!(catalog.of("o1-mini").tools, Some(false));
        assert_eq!(catalog.of("my-own-llama"), Capabilities::default());
    }

    #[test]
    fn overrides_merge_field_by_field_and_patterns_match_families() {
        let catalog = CapabilityCatalog::builtin()
            .unwrap()
            .with_override(
                "gpt-4o",
                Capabilities {
                    vision: Some(false),
                    ..Capabilities::default()
                },
            )
            .with_override(
                "llama-*",
                Capabilities {
                    context_window: Some(8_192),
                    tools: Some(false),
                    ..Capabilities::default()
                },
            )
            .with_override(
                "llama-3.1-*",
                Capabilities {
                    context_window: Some(131_072),
                    ..Capabilities::default()
                },
            );
        let gpt = catalog.of("gpt-4o-2024-11-20");
        assert_eq!(gpt.vision, Some(false), "the override");
        assert_eq!(gpt.context_window, Some(128_000), "the catalog's, kept");
        assert_eq!(catalog.of("llama-2-7b").context_window, Some(8_192));
        let longest = catalog.of("llama-3.1-8b");
        assert_eq!(longest.context_window, Some(131_072), "the longer pattern");
        assert_eq!(longest.tools, None, "patterns do not merge with each other");
    }

    #[test]
    fn a_catalog_listing_a_name_twice_or_with_a_typo_is_refused() {
        let entry = |model: &str| {
            format!(
                "  - {{ provider: p, model: {model}, context_window: 1, source: s, as_of: d }}\n"
            )
        };
        let twice = format!("version: v\nmodels:\n{}{}", entry("m"), entry("m"));
        assert!(CapabilityCatalog::from_yaml(&twice).is_err());
        let typo = "version: v\nmodels:\n  - { provider: p, model: m, vison: true, source: s, as_of: d }\n";
        assert!(CapabilityCatalog::from_yaml(typo).is_err());
    }
}
