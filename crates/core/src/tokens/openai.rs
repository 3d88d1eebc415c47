//! The prompt of OpenAI-format requests, fed to a [`Counter`]: chat messages and tools, and the
//! `prompt` / `input` of completions and embeddings (a string, strings, or token arrays, whose
//! lengths are counted without tokenizing). Malformed content that the pipeline forwards as is
//! (parse keeps `messages` raw) is counted as its JSON text rather than refused.

use std::fmt;

use portcullis_types::openai::ChatCompletionRequest;
use portcullis_types::openai_chat::{
    AssistantContent, AssistantPart, Message, ResponseFormat, TextContent, UserContent, UserPart,
};
use serde::Deserializer;
use serde::de::{DeserializeSeed, Error as _, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::budget::Counter;
use super::{PER_AUDIO, PER_DOCUMENT, PER_IMAGE, PER_IMAGE_LOW, PER_MESSAGE};

/// Adds the prompt of a chat request: messages, tools and a `json_schema` response format.
pub(super) fn chat(c: &mut Counter, req: &ChatCompletionRequest) {
    match req.messages_typed() {
        Ok(messages) => messages.iter().for_each(|m| message(c, m)),
        Err(_) => c.text(req.messages.get()),
    }
    match req.tools() {
        Ok(tools) => {
            for tool in tools.iter().flatten() {
                let f = &tool.function;
                c.text(&f.name);
                c.text(f.description.as_deref().unwrap_or_default());
                c.text(f.parameters.as_deref().map_or("", RawValue::get));
            }
        }
        Err(_) => c.text(req.extra.get("tools").map_or("", RawValue::get)),
    }
    if let Ok(Some(ResponseFormat::JsonSchema { json_schema, .. })) = req.response_format() {
        c.text(&json_schema.name);
        c.text(json_schema.schema.as_deref().map_or("", RawValue::get));
    }
}

fn message(c: &mut Counter, message: &Message) {
    c.fixed(PER_MESSAGE);
    match message {
        Message::System { content, name, .. } | Message::Developer { content, name, .. } => {
            text_content(c, content);
            c.text(name.as_deref().unwrap_or_default());
        }
        Message::User { content, name, .. } => {
            match content {
                UserContent::Text(text) => c.text(text),
                UserContent::Parts(parts) => parts.iter().for_each(|p| user_part(c, p)),
            }
            c.text(name.as_deref().unwrap_or_default());
        }
        Message::Assistant {
            content,
            refusal,
            tool_calls,
            name,
            reasoning_content,
            ..
        } => {
            match content {
                Some(AssistantContent::Text(text)) => c.text(text),
                Some(AssistantContent::Parts(parts)) => {
                    for part in parts {
                        match part {
                            AssistantPart::Text(t) => c.text(&t.text),
                            AssistantPart::Refusal(r) => c.text(&r.refusal),
                        }
                    }
                }
                None => {}
            }
            c.text(refusal.as_deref().unwrap_or_default());
            for call in tool_calls {
                c.text(&call.function.name);
                c.text(&call.function.arguments);
            }
            c.text(name.as_deref().unwrap_or_default());
            c.text(reasoning_content.as_deref().unwrap_or_default());
        }
        Message::Tool { content, .. } => text_content(c, content),
        Message::Function { content, name, .. } => {
            c.text(content.as_deref().unwrap_or_default());
            c.text(name);
        }
    }
}

fn text_content(c: &mut Counter, content: &TextContent) {
    match content {
        TextContent::Text(text) => c.text(text),
        TextContent::Parts(parts) => parts.iter().for_each(|p| c.text(&p.text)),
    }
}

fn user_part(c: &mut Counter, part: &UserPart) {
    match part {
        UserPart::Text(t) => c.text(&t.text),
        UserPart::ImageUrl(i) if i.image_url.detail.as_deref() == Some("low") => {
            c.fixed(PER_IMAGE_LOW);
        }
        UserPart::ImageUrl(_) => c.fixed(PER_IMAGE),
        UserPart::InputAudio(_) => c.fixed(PER_AUDIO),
        UserPart::File(_) => c.fixed(PER_DOCUMENT),
        UserPart::Other(raw) => c.text(raw.get().get()),
    }
}

/// Adds a completions `prompt` or an embeddings `input`: a string, or an array of strings,
/// token ids or token arrays. Token ids count one each, without a lookup. A
/// value of another shape is counted as its JSON text.
pub(super) fn input(c: &mut Counter, raw: &RawValue) {
    let before = c.clone();
    let mut de = serde_json::Deserializer::from_str(raw.get());
    let walked = Input {
        c: &mut *c,
        depth: 0,
    }
    .deserialize(&mut de)
    .and_then(|()| de.end());
    if walked.is_err() {
        *c = before;
        c.text(raw.get());
    }
}

/// Walks an input value, counting into `c` as it reads: no copy of the strings unless they
/// have escapes. `depth` 0 is the value, 1 an element of it, 2 a token id of a token array.
struct Input<'c> {
    c: &'c mut Counter,
    depth: u8,
}

impl<'de> DeserializeSeed<'de> for Input<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Input<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, an array of strings, or token arrays")
    }

    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<(), E> {
        if self.depth > 1 {
            return Err(E::custom("a string inside a token array"));
        }
        self.c.text(s);
        Ok(())
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<(), E> {
        if self.depth == 0 {
            return Err(E::custom("a bare number"));
        }
        self.c.fixed(1);
        Ok(())
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<(), E> {
        self.visit_u64(v.unsigned_abs())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        match self.depth {
            0 => {
                while seq
                    .next_element_seed(Input {
                        c: &mut *self.c,
                        depth: 1,
                    })?
                    .is_some()
                {}
            }
            1 => {
                while seq
                    .next_element_seed(Input {
                        c: &mut *self.c,
                        depth: 2,
                    })?
                    .is_some()
                {}
            }
            _ => return Err(A::Error::custom("arrays nested too deep")),
        }
        Ok(())
    }
}
