//! Deployment tags and the predicates that select deployments by them. A deployment carries
//! the tags its config gives it (`models.<name>.deployments[].tags`): plain names such as
//! `zero_retention` or `attested`, or `key:value` pairs such as `region:eu`. A [`TagPredicate`]
//! says which tags a deployment must have (`all_of`) and must not have (`none_of`); its terms
//! are tags or `*` patterns (`region:eu-*`, `region:*`).
//!
//! A model's `require_tags` is a predicate the filter of stage `plan` applies to every request
//! of the model ([`super::filter`]); policies that choose deployments by tags (data residency,
//! zero retention, attestation) call [`TagPredicate::admits`] on the same tags.

use crate::auth::ModelPattern;

/// The longest tag (or predicate term) accepted.
pub const MAX_LEN: usize = 128;

/// Why a tag (or a predicate term) is not well formed.
pub fn check(tag: &str, pattern: bool) -> Result<(), &'static str> {
    let allowed = |b: u8| {
        b.is_ascii_alphanumeric()
            || matches!(b, b'_' | b'-' | b'.' | b':' | b'/')
            || (pattern && b == b'*')
    };
    if tag.is_empty() {
        Err("must not be empty")
    } else if tag.len() > MAX_LEN {
        Err("must be at most 128 characters long")
    } else if !tag.bytes().all(allowed) {
        Err(if pattern {
            "not a tag or pattern: letters, digits, '_', '-', '.', '/', one ':' between a key \
             and its value, and '*' for any run of characters"
        } else {
            "not a tag: letters, digits, '_', '-', '.', '/', and one ':' between a key and its \
             value (such as region:eu)"
        })
    } else if tag.starts_with(':') || tag.ends_with(':') || tag.matches(':').count() > 1 {
        Err("a key:value tag has one ':' with a key before it and a value after it")
    } else {
        Ok(())
    }
}

/// Which tags a deployment must have and must not have.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagPredicate {
    all_of: Vec<ModelPattern>,
    none_of: Vec<ModelPattern>,
}

impl TagPredicate {
    /// A predicate from its terms (tags or `*` patterns, checked with [`check`]).
    pub fn new<S: AsRef<str>>(all_of: &[S], none_of: &[S]) -> Self {
        let patterns = |terms: &[S]| {
            terms
                .iter()
                .map(|t| ModelPattern::new(t.as_ref()))
                .collect()
        };
        Self {
            all_of: patterns(all_of),
            none_of: patterns(none_of),
        }
    }

    /// Whether it demands nothing.
    pub fn is_empty(&self) -> bool {
        self.all_of.is_empty() && self.none_of.is_empty()
    }

    /// Whether a deployment with `tags` satisfies it: every `all_of` term matches one of its
    /// tags, and no `none_of` term matches any.
    pub fn admits<S: AsRef<str>>(&self, tags: &[S]) -> bool {
        let has = |term: &ModelPattern| tags.iter().any(|t| term.matches(t.as_ref()));
        self.all_of.iter().all(has) && !self.none_of.iter().any(has)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_of_and_none_of_with_exact_tags_and_patterns() {
        let eu_private = TagPredicate::new(&["zero_retention", "region:eu*"], &["shared"]);
        assert!(eu_private.admits(&["region:eu-west", "zero_retention", "attested"]));
        assert!(
            !eu_private.admits(&["region:us", "zero_retention"]),
            "region"
        );
        assert!(!eu_private.admits(&["region:eu"]), "zero_retention missing");
        assert!(
            !eu_private.admits(&["region:eu", "zero_retention", "shared"]),
            "none_of"
        );
        let any_region = TagPredicate::new(&["region:*"], &[]);
        assert!(any_region.admits(&["region:ap"]));
        assert!(!any_region.admits(&["regional"]));
        let empty = TagPredicate::new::<&str>(&[], &[]);
        assert!(empty.is_empty() && empty.admits::<&str>(&[]));
        assert!(!TagPredicate::new(&["attested"], &[]).admits::<&str>(&[]));
    }

    #[test]
    fn tags_are_names_or_key_value_pairs() {
        for good in [
            "zero_retention",
            "region:eu",
            "attested",
            "tier:gpu/a100",
            "v1.2",
        ] {
            assert_eq!(check(good, false), Ok(()), "{good}");
        }
        for bad in [
            "",
            "region:",
            ":eu",
            "a:b:c",
            "has space",
            "région:eu",
            "eu*",
        ] {
            assert!(check(bad, false).is_err(), "{bad}");
        }
        assert_eq!(check("region:eu-*", true), Ok(()));
        assert!(check(&"x".repeat(MAX_LEN + 1), false).is_err());
    }
}
