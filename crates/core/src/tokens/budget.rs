//! A token counter with a bound on the text it tokenizes: texts are counted exactly until a
//! byte budget is spent; every byte after that is extrapolated from the ratio of tokens to bytes
//! counted so far. Once the budget runs out the ratio is frozen, so adding text never lowers the
//! total (see the parent module for the error this costs).

use super::count_text;

/// Bytes per token assumed when text must be extrapolated before any was counted.
const FALLBACK_BYTES_PER_TOKEN: u64 = 4;

/// Accumulates the tokens of the texts and fixed counts of one request.
#[derive(Debug, Clone)]
pub(super) struct Counter {
    /// Bytes that may still be tokenized exactly.
    budget: usize,
    /// Bytes tokenized exactly, and their tokens.
    counted_bytes: u64,
    counted_tokens: u64,
    /// Bytes past the budget, to extrapolate.
    skipped_bytes: u64,
    /// Tokens not derived from text: per-message overhead, images, token arrays.
    fixed: u64,
}

impl Counter {
    /// A counter that tokenizes at most `budget` bytes of text exactly.
    pub(super) fn bounded(budget: usize) -> Self {
        Self {
            budget,
            counted_bytes: 0,
            counted_tokens: 0,
            skipped_bytes: 0,
            fixed: 0,
        }
    }

    /// A counter that tokenizes everything.
    pub(super) fn exact() -> Self {
        Self::bounded(usize::MAX)
    }

    /// Adds the tokens of `text`: exactly while budget remains, else by extrapolation. A text
    /// that crosses the budget is counted up to the last char boundary within it.
    pub(super) fn text(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        if self.skipped_bytes > 0 {
            self.skipped_bytes = self.skipped_bytes.saturating_add(text.len() as u64);
            return;
        }
        let cut = if text.len() <= self.budget {
            text.len()
        } else {
            floor_char_boundary(text, self.budget)
        };
        let (head, tail) = text.split_at(cut);
        self.counted_tokens += count_text(head);
        self.counted_bytes += head.len() as u64;
        self.budget -= head.len();
        if !tail.is_empty() {
            self.skipped_bytes = tail.len() as u64;
            self.budget = 0;
        }
    }

    /// Adds `tokens` not derived from text.
    pub(super) fn fixed(&mut self, tokens: u64) {
        self.fixed = self.fixed.saturating_add(tokens);
    }

    /// The total: fixed counts, counted tokens and the extrapolation of the skipped bytes
    /// (rounded up).
    pub(super) fn total(&self) -> u64 {
        let extrapolated = if self.skipped_bytes == 0 {
            0
        } else if self.counted_tokens == 0 {
            self.skipped_bytes.div_ceil(FALLBACK_BYTES_PER_TOKEN)
        } else {
            let scaled = u128::from(self.skipped_bytes) * u128::from(self.counted_tokens);
            let tokens = scaled.div_ceil(u128::from(self.counted_bytes.max(1)));
            u64::try_from(tokens).unwrap_or(u64::MAX)
        };
        self.fixed
            .saturating_add(self.counted_tokens)
            .saturating_add(extrapolated)
    }
}

/// The largest char boundary of `text` at or below `index`.
fn floor_char_boundary(text: &str, index: usize) -> usize {
    let mut i = index.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_under_budget_and_extrapolated_over() {
        let mut exact = Counter::exact();
        exact.text("hello world");
        exact.fixed(3);
        assert_eq!(exact.total(), 5);

        let mut none = Counter::bounded(0);
        none.text("abcdefgh");
        assert_eq!(none.total(), 2, "4 bytes a token with nothing counted");

        let mut split = Counter::bounded(5);
        split.text("héllo wörld");
        assert!(split.total() > 0);
        let mut multibyte = Counter::bounded(1);
        multibyte.text("日本語");
        assert_eq!(multibyte.counted_bytes, 0, "never splits inside a char");
        assert!(multibyte.total() > 0);
    }

    #[test]
    fn ratio_freezes_once_over_budget() {
        let mut c = Counter::bounded(8);
        c.text("one two three four");
        let before = c.total();
        c.text("x");
        c.text("日");
        assert!(c.total() >= before);
        assert_eq!(c.counted_bytes, 8);
    }
}
