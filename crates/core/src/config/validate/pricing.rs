//! Validation of `pricing`: the deployment's prices, over the catalog shipped with the gateway
//! (see [`crate::pricing`]). Each entry of `pricing.models` prices a served model name in US
//! dollars per million tokens, replacing the shipped price of that name (and of its dated
//! snapshots, which find their base name). A price that is not a plain decimal is a problem
//! with its path.

use std::collections::BTreeMap;

use super::super::raw::RawPrice;
use super::Validator;
use crate::pricing::{Price, PriceCatalog, parse_usd};

impl Validator<'_> {
    pub(super) fn pricing(&mut self, models: BTreeMap<String, RawPrice>) -> PriceCatalog {
        let mut catalog = match PriceCatalog::builtin() {
            Ok(c) => c,
            Err(e) => {
                // The shipped file is checked by its tests; this is only reachable if it breaks.
                self.problem("pricing", e.to_string());
                return PriceCatalog::empty();
            }
        };
        for (model, raw) in models {
            let path = format!("pricing.models.{model}");
            let mut amount = |field: &str, text: Option<&str>| -> Option<u64> {
                let text = text?;
                match parse_usd(text) {
                    Ok(v) => Some(v),
                    Err(e) => {
                        self.problem(format!("{path}.{field}"), e.to_string());
                        None
                    }
                }
            };
            let input = amount("input", raw.input.as_deref());
            let output = amount("output", raw.output.as_deref());
            let cached_input = amount("cached_input", raw.cached_input.as_deref());
            let reasoning = amount("reasoning", raw.reasoning.as_deref());
            match (input, output) {
                (Some(input), Some(output)) => {
                    catalog = catalog.with_override(
                        &model,
                        Price {
                            input,
                            cached_input,
                            output,
                            reasoning,
                        },
                    );
                }
                _ if raw.input.is_none() || raw.output.is_none() => self.problem(
                    path,
                    "needs input and output (US dollars per million tokens, such as \"2.50\")",
                ),
                _ => {}
            }
        }
        catalog
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use std::collections::HashMap;

    use crate::config::Config;
    use crate::pricing::Money;
    use portcullis_types::Usage;

    const BASE: &str = "auth: { keys: [] }\n";

    #[test]
    fn overrides_replace_and_add_prices() {
        let yaml = format!(
            "{BASE}pricing:\n  models:\n    gpt-4o: {{ input: \"1.00\", output: \"2.00\" }}\n    \
             in-house-llm: {{ input: \"0.5\", output: \"0.5\", cached_input: \"0.1\" }}\n"
        );
        let config = Config::from_yaml(&yaml, &HashMap::<String, String>::new()).unwrap();
        let usage = Usage::new(1_000_000, 1_000_000);
        assert_eq!(
            config.pricing.cost("gpt-4o-2024-08-06", &usage),
            Some(Money(3_000_000_000))
        );
        assert_eq!(
            config.pricing.cost("in-house-llm", &usage),
            Some(Money(1_000_000_000))
        );
        // The shipped prices stay for the rest.
        assert!(config.pricing.price("claude-sonnet-4-5").is_some());
    }

    #[test]
    fn bad_prices_are_problems_with_their_path() {
        let yaml = format!(
            "{BASE}pricing:\n  models:\n    a: {{ input: \"2,50\", output: \"1\" }}\n    \
             b: {{ input: \"1\" }}\n"
        );
        let problems = Config::from_yaml(&yaml, &HashMap::<String, String>::new()).unwrap_err();
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert!(
            text.iter().any(|p| p.contains("pricing.models.a.input")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|p| p.contains("pricing.models.b") && p.contains("needs input and output")),
            "{text:?}"
        );
    }
}
