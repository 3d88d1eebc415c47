//! The price catalog and the cost of a request. The gateway ships a catalog of list prices
//! (`data/prices.yaml`, compiled into the binary: a version, and per model its input,
//! cached-input, output and reasoning prices with their source and date); a deployment
//! overrides or adds models in its config (`pricing.models`). The cost of a request is computed
//! from the usage the provider reported, once the request is finished.
//!
//! Money is an integer count of nano-dollars ([`Money`]), never a float: a request's cost is
//! exact to a billionth of a dollar, sums do not drift, and 2^63 nano-dollars (9.2 billion
//! dollars) is more than any budget. Prices are nano-dollars per million tokens, parsed from
//! decimal strings (`"0.075"`) without going through a float.
//!
//! A served model name finds its price by exact name or alias, then without a dated suffix
//! (`gpt-4o-2024-08-06` → `gpt-4o`, `claude-sonnet-4-5-20250929` → `claude-sonnet-4-5`), then
//! without a Bedrock cross-region prefix (`us.`, `eu.`, `apac.`, `global.`). A model with no
//! price has no cost (`None`): the caller decides what an unpriced model means for a budget.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use portcullis_types::Usage;
use serde::Deserialize;

/// The catalog shipped with the gateway.
const BUILTIN: &str = include_str!("../data/prices.yaml");

/// The providers every shipped catalog (prices, capabilities) covers.
#[cfg(test)]
pub(crate) const SHIPPED_PROVIDERS: [&str; 6] = [
    "openai",
    "anthropic",
    "google",
    "mistral",
    "cohere",
    "amazon",
];

/// An amount of US dollars, in nano-dollars (10^-9 USD).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(pub u64);

impl Money {
    pub const ZERO: Money = Money(0);

    pub fn nanos(self) -> u64 {
        self.0
    }

    pub fn saturating_add(self, other: Money) -> Money {
        Money(self.0.saturating_add(other.0))
    }
}

impl fmt::Display for Money {
    /// Dollars with up to nine decimals, trailing zeros trimmed to at least two: `$0.000125`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / 1_000_000_000;
        let frac = format!("{:09}", self.0 % 1_000_000_000);
        let trimmed = frac.trim_end_matches('0');
        let shown = if trimmed.len() < 2 {
            &frac[..2]
        } else {
            trimmed
        };
        write!(f, "${whole}.{shown}")
    }
}

/// Why a price or a catalog is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PricingError {
    #[error("'{0}' is not a price: write US dollars per million tokens, such as \"2.50\"")]
    BadAmount(String),
    #[error("the price catalog is invalid: {0}")]
    Catalog(String),
}

/// Parses US dollars per million tokens (`"2.50"`, `"0.0375"`, `"3"`) into nano-dollars per
/// million tokens, exactly: at most nine decimals, no sign, no exponent.
pub fn parse_usd(text: &str) -> Result<u64, PricingError> {
    let bad = || PricingError::BadAmount(text.to_owned());
    let (whole, frac) = text.trim().split_once('.').unwrap_or((text.trim(), ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(frac) || frac.len() > 9 {
        return Err(bad());
    }
    let whole: u64 = whole.parse().map_err(|_| bad())?;
    let frac: u64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().map_err(|_| bad())?
    };
    whole
        .checked_mul(1_000_000_000)
        .and_then(|w| w.checked_add(frac))
        .ok_or_else(bad)
}

/// Prices of one model, in nano-dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Price {
    pub input: u64,
    /// Prompt tokens read from the provider's cache; `None`: charged as input.
    pub cached_input: Option<u64>,
    pub output: u64,
    /// Reasoning tokens; `None`: charged as output.
    pub reasoning: Option<u64>,
}

impl Price {
    /// The cost of `usage` (OpenAI's semantics: cached tokens are part of the prompt tokens,
    /// reasoning tokens part of the completion tokens), rounded to the nearest nano-dollar.
    pub fn cost(&self, usage: &Usage) -> Money {
        let cached = usage.cached_tokens.min(usage.prompt_tokens);
        let reasoning = usage.reasoning_tokens.min(usage.completion_tokens);
        let parts = [
            (usage.prompt_tokens - cached, self.input),
            (cached, self.cached_input.unwrap_or(self.input)),
            (usage.completion_tokens - reasoning, self.output),
            (reasoning, self.reasoning.unwrap_or(self.output)),
        ];
        let total: u128 = parts
            .iter()
            .map(|&(tokens, price)| u128::from(tokens) * u128::from(price))
            .sum();
        let nanos = (total + 500_000) / 1_000_000;
        Money(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

/// One model of the catalog, with where its prices come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogEntry {
    pub provider: String,
    pub model: String,
    pub price: Price,
    /// The provider's pricing page.
    pub source: String,
    /// When the entry was last written from its source (`YYYY-MM-DD`).
    pub as_of: String,
}

/// The prices the gateway knows: the shipped catalog with the deployment's overrides.
#[derive(Debug, Clone)]
pub struct PriceCatalog {
    version: String,
    by_name: HashMap<String, Arc<CatalogEntry>>,
}

/// A catalog file shipped with the gateway (prices, capabilities): a version and its entries.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCatalog<E> {
    pub version: String,
    pub models: Vec<E>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    provider: String,
    model: String,
    input: String,
    cached_input: Option<String>,
    output: String,
    reasoning: Option<String>,
    source: String,
    as_of: String,
    #[serde(default)]
    aliases: Vec<String>,
}

impl PriceCatalog {
    /// The catalog shipped with the gateway.
    pub fn builtin() -> Result<Self, PricingError> {
        Self::from_yaml(BUILTIN)
    }

    /// A catalog in the shipped file's format.
    pub fn from_yaml(text: &str) -> Result<Self, PricingError> {
        let raw: RawCatalog<RawEntry> =
            serde_yaml_ng::from_str(text).map_err(|e| PricingError::Catalog(e.to_string()))?;
        let mut by_name = HashMap::new();
        for e in raw.models {
            let price = Price {
                input: parse_usd(&e.input)?,
                cached_input: e.cached_input.as_deref().map(parse_usd).transpose()?,
                output: parse_usd(&e.output)?,
                reasoning: e.reasoning.as_deref().map(parse_usd).transpose()?,
            };
            let entry = Arc::new(CatalogEntry {
                provider: e.provider,
                model: e.model.clone(),
                price,
                source: e.source,
                as_of: e.as_of,
            });
            for name in std::iter::once(e.model).chain(e.aliases) {
                if by_name.insert(name.clone(), entry.clone()).is_some() {
                    return Err(PricingError::Catalog(format!("'{name}' is listed twice")));
                }
            }
        }
        Ok(Self {
            version: raw.version,
            by_name,
        })
    }

    /// A catalog with no prices.
    pub fn empty() -> Self {
        Self {
            version: String::new(),
            by_name: HashMap::new(),
        }
    }

    /// The catalog's version (the date of its last update).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Number of names (models and aliases) with a price.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// This catalog with `model` priced at `price` (a deployment's override), replacing any
    /// entry of that name.
    pub fn with_override(mut self, model: &str, price: Price) -> Self {
        let entry = CatalogEntry {
            provider: "config".into(),
            model: model.to_owned(),
            price,
            source: "config".into(),
            as_of: String::new(),
        };
        self.by_name.insert(model.to_owned(), Arc::new(entry));
        self
    }

    /// The entry pricing the served model `model`, if any (see the module doc for the
    /// matching rules).
    pub fn entry(&self, model: &str) -> Option<&CatalogEntry> {
        by_served_name(&self.by_name, model).map(Arc::as_ref)
    }

    /// The price of the served model `model`, if any.
    pub fn price(&self, model: &str) -> Option<Price> {
        self.entry(model).map(|e| e.price)
    }

    /// The cost of `usage` on `model`; `None` when the model has no price.
    pub fn cost(&self, model: &str, usage: &Usage) -> Option<Money> {
        self.price(model).map(|p| p.cost(usage))
    }
}

/// The value of `map` for the served model name `model`: by exact name, then without a dated
/// suffix, then without a Bedrock cross-region prefix (and then without both). Catalogs keyed by
/// model name (prices, capabilities) find their entries this way.
pub(crate) fn by_served_name<'m, V>(map: &'m HashMap<String, V>, model: &str) -> Option<&'m V> {
    let find = |name: &str| {
        map.get(name)
            .or_else(|| without_date(name).and_then(|base| map.get(base)))
    };
    find(model).or_else(|| without_region(model).and_then(find))
}

/// `name` without a dated suffix: `-YYYY-MM-DD` or `-YYYYMMDD`.
fn without_date(name: &str) -> Option<&str> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if let Some((base, date)) = name.rsplit_once('-')
        && date.len() == 8
        && digits(date)
    {
        return Some(base);
    }
    // -YYYY-MM-DD: three dash-separated numeric parts.
    let mut parts = name.rsplitn(4, '-');
    let (day, month, year, base) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    (year.len() == 4
        && month.len() == 2
        && day.len() == 2
        && [year, month, day].iter().all(|p| digits(p)))
    .then_some(base)
}

/// `name` without a Bedrock cross-region inference prefix.
fn without_region(name: &str) -> Option<&str> {
    ["us.", "eu.", "apac.", "global."]
        .iter()
        .find_map(|p| name.strip_prefix(p))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn amounts_parse_exactly() {
        assert_eq!(parse_usd("2.50").unwrap(), 2_500_000_000);
        assert_eq!(parse_usd("0.075").unwrap(), 75_000_000);
        assert_eq!(parse_usd("0.00875").unwrap(), 8_750_000);
        assert_eq!(parse_usd("3").unwrap(), 3_000_000_000);
        assert_eq!(parse_usd("0").unwrap(), 0);
        for bad in [
            "",
            "-1",
            "1e3",
            "1.0000000001",
            "abc",
            ".5",
            "1.2.3",
            "99999999999999",
        ] {
            assert!(parse_usd(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn money_prints_as_dollars() {
        assert_eq!(Money(0).to_string(), "$0.00");
        assert_eq!(Money(125_000).to_string(), "$0.000125");
        assert_eq!(Money(2_500_000_000).to_string(), "$2.50");
        assert_eq!(Money(12_345_678_901).to_string(), "$12.345678901");
    }

    #[test]
    fn cost_splits_cached_and_reasoning_tokens() {
        // gpt-4o-like: $2.50 in, $1.25 cached, $10 out.
        let price = Price {
            input: 2_500_000_000,
            cached_input: Some(1_250_000_000),
            output: 10_000_000_000,
            reasoning: None,
        };
        // 1,000 prompt tokens of which 400 cached; 200 completion tokens of which 50 reasoning.
        let usage = Usage::new(1_000, 200).with_details(400, 50);
        // 600 × 2.5e3 + 400 × 1.25e3 + 200 × 10e3 nano-dollars = 1.5e6 + 0.5e6 + 2e6.
        assert_eq!(price.cost(&usage), Money(4_000_000));
        // Reasoning priced apart.
        let dearer = Price {
            reasoning: Some(20_000_000_000),
            ..price
        };
        assert_eq!(dearer.cost(&usage), Money(4_500_000));
        // Rounded to the nearest nano-dollar: 1 token at $0.0375/M is 37.5 nano-dollars.
        let cheap = Price {
            input: 37_500_000,
            cached_input: None,
            output: 0,
            reasoning: None,
        };
        assert_eq!(cheap.cost(&Usage::new(1, 0)), Money(38));
        assert_eq!(cheap.cost(&Usage::new(100, 0)), Money(3_750));
        // Inconsistent details (more cached than prompt tokens) never underflow.
        assert_eq!(
            price.cost(&Usage::new(10, 0).with_details(99, 0)),
            Money(12_500)
        );
    }

    #[test]
    fn the_shipped_catalog_loads_and_every_entry_has_a_source_and_date() {
        let catalog = PriceCatalog::builtin().unwrap();
        assert!(catalog.len() > 30, "{}", catalog.len());
        assert_eq!(catalog.version().len(), 10);
        for entry in catalog.by_name.values() {
            assert!(entry.source.starts_with("https://"), "{entry:?}");
            assert_eq!(entry.as_of.len(), 10, "{entry:?}");
            assert!(entry.price.input > 0, "{entry:?}");
            if let Some(cached) = entry.price.cached_input {
                assert!(cached <= entry.price.input, "{entry:?}");
            }
        }
        for provider in SHIPPED_PROVIDERS {
            assert!(
                catalog.by_name.values().any(|e| e.provider == provider),
                "no {provider} models"
            );
        }
    }

    #[test]
    fn served_names_find_their_entry() {
        let catalog = PriceCatalog::builtin().unwrap();
        let name = |m: &str| catalog.entry(m).map(|e| e.model.as_str());
        assert_eq!(name("gpt-4o"), Some("gpt-4o"));
        assert_eq!(name("gpt-4o-2024-08-06"), Some("gpt-4o"));
        assert_eq!(name("gpt-4o-mini-2024-07-18"), Some("gpt-4o-mini"));
        assert_eq!(
            name("claude-sonnet-4-5-20250929"),
            Some("claude-sonnet-4-5")
        );
        assert_eq!(
            name("us.anthropic.claude-sonnet-4-5-20250929-v1:0"),
            Some("claude-sonnet-4-5")
        );
        assert_eq!(name("gpt-unknown"), None);
        assert_eq!(name("command-r-08-2024"), Some("command-r-08-2024"));
        // An override replaces the shipped price.
        let custom = Price {
            input: 1,
            cached_input: None,
            output: 2,
            reasoning: None,
        };
        let catalog = catalog.with_override("gpt-4o", custom);
        assert_eq!(catalog.price("gpt-4o-2024-08-06"), Some(custom));
        assert_eq!(catalog.entry("gpt-4o").unwrap().source, "config");
    }

    #[test]
    fn a_catalog_with_a_bad_price_or_a_duplicate_is_refused() {
        let entry = |model: &str, input: &str| {
            format!(
                "  - {{ provider: p, model: {model}, input: \"{input}\", output: \"1\", source: s, as_of: d }}\n"
            )
        };
        let bad = format!("version: v\nmodels:\n{}", entry("m", "1,5"));
        assert!(matches!(
            PriceCatalog::from_yaml(&bad),
            Err(PricingError::BadAmount(_))
        ));
        let twice = format!(
            "version: v\nmodels:\n{}{}",
            entry("m", "1"),
            entry("m", "2")
        );
        assert!(matches!(
            PriceCatalog::from_yaml(&twice),
            Err(PricingError::Catalog(_))
        ));
    }
}
