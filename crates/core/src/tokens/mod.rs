//! Local token estimates. Text is counted with the `o200k_base` encoding (tiktoken-rs); other
//! models' tokenizers differ, so every figure here is an estimate.
//!
//! - [`estimate_messages`] answers `/v1/messages/count_tokens` on a deployment whose provider
//!   has no counting endpoint, as that deployment's docs say (docs/architecture.md). It counts
//!   all text exactly.
//! - [`estimate`] sizes any parsed request before it is sent: the prompt, and the output to
//!   reserve (`max_completion_tokens`, else `max_tokens`, else a configured default, times `n`;
//!   nothing for embeddings and count_tokens). It is a reservation to settle later against the
//!   usage the provider reports, so it trades exactness for a bounded cost.
//!
//! # The bound
//!
//! Exact tokenization with tiktoken-rs is slow: about 6 MiB/s measured on English-like text
//! (`count_text` in `benches/estimate.rs`, on a shared 2-core machine), some 170 µs a KiB, so a
//! 1 MB prompt would cost over 150 ms. [`estimate`] tokenizes only the first [`EXACT_BUDGET`]
//! bytes of text of a request (texts in request order; one that crosses the budget is cut at a
//! char boundary) and extrapolates every later byte at the ratio of tokens to bytes counted so
//! far (4 bytes a token if none was). Once the budget is spent the ratio is frozen, so adding
//! content never lowers an estimate. The cost is then the budget's tokenization (a few hundred
//! µs at most at 2 KiB) plus a linear walk of the request (about 1 ms for 1 MB of JSON). A
//! smaller budget barely changes the error on homogeneous text; a faster tokenizer would allow
//! a larger one.
//!
//! The error of the extrapolation is the drift of the text's density after the budget: on
//! homogeneous long texts (prose, source code) it stays within a few percent (tested at ±25%),
//! but a prompt that opens with prose and continues with, say, CJK text or base64 is
//! underestimated by the density ratio of the two. Cutting a text at the budget may split one
//! token, an error of one token. Images, audio and documents count fixed amounts, not decoded.

mod budget;
mod openai;

use portcullis_types::anthropic::{Content, ContentBlock, CountTokensRequest, Message, Tool};
use tiktoken_rs::CoreBPE;

use crate::pipeline::ApiRequest;
use budget::Counter;

/// Bytes of text per request [`estimate`] tokenizes exactly; the rest is extrapolated.
pub const EXACT_BUDGET: usize = 2 * 1024;
/// Tokens counted for each message on top of its content (role and framing).
const PER_MESSAGE: u64 = 4;
/// Tokens counted for an image: Anthropic's estimate for an image of about 1.15 megapixels,
/// the size it scales larger images down to. The image is not decoded to measure it.
const PER_IMAGE: u64 = 1_600;
/// Tokens counted for an OpenAI image sent with `detail: "low"`: a fixed 85 in OpenAI's docs.
const PER_IMAGE_LOW: u64 = 85;
/// Tokens counted for a PDF document page budget when its size is unknown.
const PER_DOCUMENT: u64 = 1_500;
/// Tokens counted for an audio clip, not decoded: about a minute at OpenAI's 10 tokens a
/// second of input audio.
const PER_AUDIO: u64 = 600;

/// The tokens a request is expected to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Estimate {
    /// Input tokens.
    pub prompt: u64,
    /// Output tokens to reserve.
    pub output: u64,
}

impl Estimate {
    /// Prompt and output together.
    pub fn total(&self) -> u64 {
        self.prompt.saturating_add(self.output)
    }
}

fn encoder() -> &'static CoreBPE {
    tiktoken_rs::o200k_base_singleton()
}

/// Tokens of `text`.
pub fn count_text(text: &str) -> u64 {
    if text.is_empty() {
        return 0;
    }
    encoder().encode_ordinary(text).len() as u64
}

/// The estimated prompt and output reservation of `request`, tokenizing at most
/// [`EXACT_BUDGET`] bytes (see the module doc). `default_output` is reserved when the request
/// sets no output limit.
pub fn estimate(request: &ApiRequest, default_output: u64) -> Estimate {
    Estimate {
        prompt: estimate_prompt(request),
        output: reserved_output(request, default_output),
    }
}

/// The prompt part of [`estimate`]: the estimated input tokens of `request`.
pub fn estimate_prompt(request: &ApiRequest) -> u64 {
    let mut c = Counter::bounded(EXACT_BUDGET);
    match request {
        ApiRequest::Chat(r) => openai::chat(&mut c, r),
        ApiRequest::Completion(r) => openai::input(&mut c, &r.prompt),
        ApiRequest::Embedding(r) => openai::input(&mut c, &r.input),
        ApiRequest::Messages(r) => {
            anthropic(&mut c, r.system.as_ref(), &r.messages, r.tools.as_deref());
        }
        ApiRequest::CountTokens(r) => {
            anthropic(&mut c, r.system.as_ref(), &r.messages, r.tools.as_deref());
        }
    }
    c.total()
}

/// The output the request asks for, per choice: `max_completion_tokens`, else `max_tokens`;
/// `None` when it sets none (or generates nothing).
pub fn requested_output(request: &ApiRequest) -> Option<u64> {
    match request {
        ApiRequest::Chat(r) => r.max_completion_tokens.or(r.max_tokens),
        ApiRequest::Completion(r) => r.max_tokens,
        ApiRequest::Messages(r) => Some(r.max_tokens),
        ApiRequest::Embedding(_) | ApiRequest::CountTokens(_) => None,
    }
}

/// The output part of [`estimate`]: the output tokens to reserve for `request`, all choices
/// together ([`requested_output`], or `default_output` per choice when it sets no limit).
pub fn reserved_output(request: &ApiRequest, default_output: u64) -> u64 {
    let per_choice = requested_output(request).unwrap_or(default_output);
    match request {
        ApiRequest::Chat(r) => times_n(per_choice, r.extra.get_as("n")),
        ApiRequest::Completion(r) => {
            // `best_of` candidates are generated (and billed) server-side, `n` of them returned.
            let n = r.extra.get_as::<u64>("n");
            let best_of = r.extra.get_as::<u64>("best_of");
            times_n(per_choice, n.max(best_of))
        }
        ApiRequest::Messages(_) => per_choice,
        ApiRequest::Embedding(_) | ApiRequest::CountTokens(_) => 0,
    }
}

/// `output` for each of `n` choices (`n` absent or 0: one).
fn times_n(output: u64, n: Option<u64>) -> u64 {
    output.saturating_mul(n.unwrap_or(1).max(1))
}

/// The estimated input tokens of an Anthropic count_tokens request, all text counted exactly.
pub fn estimate_messages(req: &CountTokensRequest) -> u64 {
    let mut c = Counter::exact();
    anthropic(
        &mut c,
        req.system.as_ref(),
        &req.messages,
        req.tools.as_deref(),
    );
    c.total()
}

fn anthropic(
    c: &mut Counter,
    system: Option<&Content>,
    messages: &[Message],
    tools: Option<&[Tool]>,
) {
    if let Some(system) = system {
        content(c, system);
        c.fixed(PER_MESSAGE);
    }
    for message in messages {
        content(c, &message.content);
        c.fixed(PER_MESSAGE);
    }
    for tool in tools.unwrap_or_default() {
        c.text(&tool.name);
        c.text(tool.description.as_deref().unwrap_or_default());
        c.text(tool.input_schema.as_ref().map_or("", |s| s.get()));
    }
}

fn content(c: &mut Counter, content: &Content) {
    match content {
        Content::Text(text) => c.text(text),
        Content::Blocks(blocks) => blocks.iter().for_each(|b| block(c, b)),
    }
}

fn block(c: &mut Counter, block: &ContentBlock) {
    match block {
        ContentBlock::Text(t) => c.text(&t.text),
        ContentBlock::Image(_) => c.fixed(PER_IMAGE),
        ContentBlock::Document(_) => c.fixed(PER_DOCUMENT),
        ContentBlock::ToolUse(t) => {
            c.text(&t.name);
            c.text(t.input.get());
        }
        ContentBlock::ToolResult(r) => {
            if let Some(inner) = &r.content {
                content(c, inner);
            }
        }
        ContentBlock::Thinking(t) => c.text(&t.thinking),
        ContentBlock::RedactedThinking(_) => {}
        ContentBlock::Other(raw) => c.text(&serde_json::to_string(raw).unwrap_or_default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_grow_with_content() {
        assert_eq!(count_text(""), 0);
        assert_eq!(count_text("hello world"), 2);
        let req = |body: &str| -> CountTokensRequest { serde_json::from_str(body).unwrap() };
        let short = estimate_messages(&req(
            r#"{"model":"m","messages":[{"role":"user","content":"Hi"}]}"#,
        ));
        let long = estimate_messages(&req(
            r#"{"model":"m","system":"You are terse.","messages":[{"role":"user","content":"Hi there, how are you today?"}],
               "tools":[{"name":"get_weather","description":"Weather","input_schema":{"type":"object"}}]}"#,
        ));
        let image = estimate_messages(&req(
            r#"{"model":"m","messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"AAAA"}}]}]}"#,
        ));
        assert_eq!(short, 1 + PER_MESSAGE);
        assert!(long > short + 10, "{long}");
        assert_eq!(image, PER_IMAGE + PER_MESSAGE);
    }
}

#[cfg(test)]
mod estimate_tests;
