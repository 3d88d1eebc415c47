//! Local token estimates, for when no provider counts for us: `/v1/messages/count_tokens` on a
//! deployment whose provider has no counting endpoint. Text is counted with the `o200k_base`
//! encoding (tiktoken-rs); other models' tokenizers differ, so this is an estimate, as the
//! response of such a deployment says in its docs (docs/architecture.md).

use portcullis_types::anthropic::{Content, ContentBlock, CountTokensRequest};
use tiktoken_rs::CoreBPE;

/// Tokens counted for each message on top of its content (role and framing).
const PER_MESSAGE: u64 = 4;
/// Tokens counted for an image: Anthropic's estimate for an image of about 1.15 megapixels,
/// the size it scales larger images down to. The image is not decoded to measure it.
const PER_IMAGE: u64 = 1_600;
/// Tokens counted for a PDF document page budget when its size is unknown.
const PER_DOCUMENT: u64 = 1_500;

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

/// The estimated input tokens of an Anthropic count_tokens request.
pub fn estimate_messages(req: &CountTokensRequest) -> u64 {
    let mut total = 0u64;
    if let Some(system) = &req.system {
        total += content(system) + PER_MESSAGE;
    }
    for message in &req.messages {
        total += content(&message.content) + PER_MESSAGE;
    }
    for tool in req.tools.iter().flatten() {
        total += count_text(&tool.name);
        total += tool.description.as_deref().map_or(0, count_text);
        total += tool
            .input_schema
            .as_ref()
            .map_or(0, |s| count_text(s.get()));
    }
    total
}

fn content(content: &Content) -> u64 {
    match content {
        Content::Text(text) => count_text(text),
        Content::Blocks(blocks) => blocks.iter().map(block).sum(),
    }
}

fn block(block: &ContentBlock) -> u64 {
    match block {
        ContentBlock::Text(t) => count_text(&t.text),
        ContentBlock::Image(_) => PER_IMAGE,
        ContentBlock::Document(_) => PER_DOCUMENT,
        ContentBlock::ToolUse(t) => count_text(&t.name) + count_text(t.input.get()),
        ContentBlock::ToolResult(r) => r.content.as_ref().map_or(0, content),
        ContentBlock::Thinking(t) => count_text(&t.thinking),
        ContentBlock::RedactedThinking(_) => 0,
        ContentBlock::Other(raw) => count_text(&serde_json::to_string(raw).unwrap_or_default()),
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
