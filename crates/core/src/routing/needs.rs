//! What a parsed request needs of a deployment: images, tools, a `json_schema` response format,
//! an output size, and a prompt size. Read by the filter of stage `plan` ([`super::filter`])
//! and by the routing rules of stage `resolve` ([`super::rules`]).
//!
//! Each reading is cheap: chat `messages` stay raw JSON after parsing, so images are found by a
//! byte search for the `"image_url"` key rather than by typing the messages; tools and the
//! response format are looked up among the fields parse kept; Anthropic requests are typed
//! already. Tokenizing the prompt costs tens to hundreds of microseconds, so
//! [`prompt_bound`] gives an upper bound of the estimate from the body's size, which settles most
//! context-window checks without tokenizing.

use memchr::memmem;
use portcullis_types::anthropic::{Content, ContentBlock, Message};
use serde_json::value::RawValue;

use crate::json_scan;
use crate::pipeline::ApiRequest;

/// Whether the request's messages hold an image: an OpenAI `image_url` part, or an Anthropic
/// `image` block (in a message or a tool result).
pub fn has_images(request: &ApiRequest) -> bool {
    match request {
        ApiRequest::Chat(r) => has_key(r.messages.get(), "image_url"),
        ApiRequest::Messages(r) => {
            anthropic_blocks(&r.messages, |b| matches!(b, ContentBlock::Image(_)))
        }
        ApiRequest::CountTokens(r) => {
            anthropic_blocks(&r.messages, |b| matches!(b, ContentBlock::Image(_)))
        }
        ApiRequest::Completion(_) | ApiRequest::Embedding(_) => false,
    }
}

/// Whether the request defines tools: a non-empty `tools` (or legacy `functions`) list.
pub fn has_tools(request: &ApiRequest) -> bool {
    match request {
        ApiRequest::Chat(r) => {
            non_empty_list(r.extra.get("tools")) || non_empty_list(r.extra.get("functions"))
        }
        ApiRequest::Messages(r) => r.tools.as_ref().is_some_and(|t| !t.is_empty()),
        ApiRequest::CountTokens(r) => r.tools.as_ref().is_some_and(|t| !t.is_empty()),
        ApiRequest::Completion(_) | ApiRequest::Embedding(_) => false,
    }
}

/// Whether a chat request asks for `response_format: {"type": "json_schema", ...}`.
pub fn wants_json_schema(request: &ApiRequest) -> bool {
    let ApiRequest::Chat(r) = request else {
        return false;
    };
    r.extra.get("response_format").is_some_and(|raw| {
        matches!(
            json_scan::top_level(raw.get().as_bytes(), ["type"]),
            Ok([Some(b"\"json_schema\"")])
        )
    })
}

pub use crate::tokens::requested_output;

/// An upper bound of the prompt the token estimate ([`crate::tokens`]) gives, without
/// tokenizing: `body_bytes`, the size of the request's body. Every token of text is at least a
/// byte, the per-message overhead is smaller than a message's JSON framing, and the estimate
/// extrapolates at most a token a byte; media are the exception (an image URL of a few bytes
/// counts as hundreds of tokens), so a request with images, audio or files has no bound here
/// (`None`) and its estimate is computed.
pub fn prompt_bound(request: &ApiRequest, body_bytes: usize) -> Option<u64> {
    let media = match request {
        ApiRequest::Chat(r) => {
            let m = r.messages.get();
            has_key(m, "image_url") || has_key(m, "input_audio") || has_key(m, "file")
        }
        ApiRequest::Messages(r) => anthropic_media(&r.messages),
        ApiRequest::CountTokens(r) => anthropic_media(&r.messages),
        ApiRequest::Completion(_) | ApiRequest::Embedding(_) => false,
    };
    (!media).then_some(body_bytes as u64)
}

fn anthropic_media(messages: &[Message]) -> bool {
    anthropic_blocks(messages, |b| {
        matches!(b, ContentBlock::Image(_) | ContentBlock::Document(_))
    })
}

/// Whether a block of `messages` (or of a tool result in them) satisfies `test`.
fn anthropic_blocks(messages: &[Message], test: impl Fn(&ContentBlock) -> bool + Copy) -> bool {
    fn any(content: &Content, test: impl Fn(&ContentBlock) -> bool + Copy) -> bool {
        let Content::Blocks(blocks) = content else {
            return false;
        };
        blocks.iter().any(|b| match b {
            ContentBlock::ToolResult(r) => {
                test(b) || r.content.as_ref().is_some_and(|c| any(c, test))
            }
            _ => test(b),
        })
    }
    messages.iter().any(|m| any(&m.content, test))
}

/// Whether the JSON text `json` has an object key `key`: the quoted name followed by a colon.
/// A quoted string inside another string has escaped quotes, so it never matches; a string
/// value equal to the name is not followed by a colon.
fn has_key(json: &str, key: &str) -> bool {
    let bytes = json.as_bytes();
    memmem::find_iter(bytes, key.as_bytes()).any(|at| {
        let end = at + key.len();
        let after = bytes.get(end + 1..).unwrap_or_default();
        at > 0
            && bytes.get(at - 1) == Some(&b'"')
            && bytes.get(end) == Some(&b'"')
            && after.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b':')
    })
}

/// Whether a raw value is a list with at least one element.
fn non_empty_list(raw: Option<&RawValue>) -> bool {
    let Some(raw) = raw else {
        return false;
    };
    let mut rest = raw.get().trim_start().bytes();
    rest.next() == Some(b'[') && rest.find(|b| !b.is_ascii_whitespace()) != Some(b']')
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;
    use crate::pipeline::parse::parse;
    use crate::provider::Operation;

    fn chat(body: serde_json::Value) -> ApiRequest {
        parse(Operation::Chat, body.to_string().as_bytes()).unwrap()
    }

    fn messages(body: serde_json::Value) -> ApiRequest {
        parse(Operation::Messages, body.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn images_are_found_in_openai_parts_and_anthropic_blocks() {
        let image =
            serde_json::json!({"type": "image_url", "image_url": {"url": "https://x/y.png"}});
        let with = chat(serde_json::json!({"model": "m", "messages": [
            {"role": "user", "content": [{"type": "text", "text": "what is it?"}, image]}]}));
        assert!(has_images(&with));
        // The word as text, or as a quoted string inside text, is not an image.
        for text in ["image_url", "\"image_url\": {}", "see \"image_url\""] {
            let without = chat(serde_json::json!({"model": "m", "messages": [
                {"role": "user", "content": text}]}));
            assert!(!has_images(&without), "{text}");
        }
        let block = serde_json::json!({"type": "image", "source": {"type": "base64",
            "media_type": "image/png", "data": "AAAA"}});
        let direct = messages(
            serde_json::json!({"model": "m", "max_tokens": 5, "messages": [
            {"role": "user", "content": [block]}]}),
        );
        assert!(has_images(&direct));
        let in_tool_result = messages(serde_json::json!({"model": "m", "max_tokens": 5,
            "messages": [{"role": "user", "content": [{"type": "tool_result",
                "tool_use_id": "t", "content": [block]}]}]}));
        assert!(has_images(&in_tool_result));
        let text = messages(
            serde_json::json!({"model": "m", "max_tokens": 5, "messages": [
            {"role": "user", "content": "image"}]}),
        );
        assert!(!has_images(&text));
    }

    #[test]
    fn tools_json_schema_and_output() {
        let tool = serde_json::json!({"type": "function", "function": {"name": "f"}});
        let base = |extra: serde_json::Value| {
            let mut body = serde_json::json!({"model": "m", "messages": [
                {"role": "user", "content": "hi"}]});
            body.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            chat(body)
        };
        assert!(has_tools(&base(serde_json::json!({"tools": [tool]}))));
        assert!(has_tools(&base(
            serde_json::json!({"functions": [{"name": "f"}]})
        )));
        assert!(!has_tools(&base(serde_json::json!({"tools": []}))));
        assert!(!has_tools(&base(serde_json::json!({"tools": null}))));
        assert!(!has_tools(&base(serde_json::json!({}))));
        let anthropic = messages(serde_json::json!({"model": "m", "max_tokens": 9,
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"name": "f", "input_schema": {"type": "object"}}]}));
        assert!(has_tools(&anthropic));
        assert_eq!(requested_output(&anthropic), Some(9));

        let schema = serde_json::json!({"response_format": {"json_schema": {"name": "s"},
            "type": "json_schema"}});
        assert!(wants_json_schema(&base(schema)));
        let object = serde_json::json!({"response_format": {"type": "json_object"}});
        assert!(!wants_json_schema(&base(object)));
        assert!(!wants_json_schema(&anthropic));

        let limits = serde_json::json!({"max_tokens": 100, "max_completion_tokens": 50});
        assert_eq!(requested_output(&base(limits)), Some(50));
        assert_eq!(requested_output(&base(serde_json::json!({}))), None);
    }

    #[test]
    fn the_bound_covers_the_estimate_unless_media_are_present() {
        let texts = [
            "Hello there, how are you today?".to_owned(),
            "日本語のテキスト".repeat(300),
            "x".repeat(20_000),
            "{}[],:\"\\".repeat(700),
        ];
        for text in texts {
            let body = serde_json::json!({"model": "m", "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": text}],
                "tools": [{"type": "function", "function": {"name": "f",
                    "description": "d", "parameters": {"type": "object"}}}]})
            .to_string();
            let request = parse(Operation::Chat, body.as_bytes()).unwrap();
            let bound = prompt_bound(&request, body.len()).unwrap();
            let estimate = crate::tokens::estimate(&request, 0).prompt;
            assert!(estimate <= bound, "{estimate} > {bound}");
        }
        let image = chat(
            serde_json::json!({"model": "m", "messages": [{"role": "user",
            "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]}),
        );
        assert_eq!(prompt_bound(&image, 100), None);
        let document = messages(
            serde_json::json!({"model": "m", "max_tokens": 5, "messages": [
            {"role": "user", "content": [{"type": "document", "source": {"type": "text",
                "media_type": "text/plain", "data": "x"}}]}]}),
        );
        assert_eq!(prompt_bound(&document, 100), None);
    }
}
