//! Token usage as OpenAI reports it, for chat, completions and embeddings.

use serde::{Deserialize, Serialize};

/// Token counts of one request. `completion_tokens` is absent for embeddings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
    #[serde(default)]
    pub total_tokens: u64,
    /// Prompt tokens read from the provider's prompt cache (part of `prompt_tokens`): OpenAI's
    /// `prompt_tokens_details.cached_tokens`. Not (de)serialized by serde: providers report it
    /// nested or under other names, so adapters and `json_scan` fill it in.
    #[serde(skip)]
    pub cached_tokens: u64,
    /// Completion tokens spent on reasoning (part of `completion_tokens`): OpenAI's
    /// `completion_tokens_details.reasoning_tokens`. Filled in like `cached_tokens`.
    #[serde(skip)]
    pub reasoning_tokens: u64,
}

impl Usage {
    pub fn new(prompt_tokens: u64, completion_tokens: u64) -> Self {
        Self {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens.saturating_add(completion_tokens),
            cached_tokens: 0,
            reasoning_tokens: 0,
        }
    }

    /// With the cached and reasoning token counts set.
    pub fn with_details(mut self, cached_tokens: u64, reasoning_tokens: u64) -> Self {
        self.cached_tokens = cached_tokens;
        self.reasoning_tokens = reasoning_tokens;
        self
    }
}
