//! The typed OpenAI chat request model that translating adapters (OpenAI to Anthropic, Gemini,
//! Bedrock, Cohere) read: messages by role with their content parts and tool calls
//! ([`Message`]), and the request fields kept raw in [`ChatCompletionRequest::extra`]
//! (`tools`, `tool_choice`, `response_format`, `stop`), read on demand by the helpers on
//! [`ChatCompletionRequest`]. Pass-through never needs any of this.
//!
//! Shapes follow OpenAI's Chat Completions reference (create chat completion, `messages`).
//! Objects keep the fields this module does not type in an `extra` map, and a user content part
//! of a `type` this module does not know is kept whole as [`Untyped`], so a body read and written
//! again says what it said. Known differences on the way back: an optional field sent as `null`
//! is written absent, an empty `tool_calls` array is written absent, and an assistant message
//! without content is written with `"content": null`.
//!
//! Objects are read by hand (the whole object as raw fields first, then typed field by field)
//! rather than with `#[serde(flatten)]` or internally tagged derives, which buffer the input into
//! serde's own content tree and cannot hold the raw JSON (`RawValue`) kept for unknown fields.
//! Types that carry content print only their shape in `Debug` (roles, part types, ids, names,
//! counts), and errors name the field but never echo a value.
//!
//! [`ChatCompletionRequest`]: crate::openai::ChatCompletionRequest
//! [`ChatCompletionRequest::extra`]: crate::openai::ChatCompletionRequest::extra

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeOwned, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;

use crate::raw::RawFields;
pub use crate::raw::Untyped;

// Content never reaches logs: these types print their shape, not their text.
macro_rules! redacted_debug {
    ($ty:ty, |$s:ident, $d:ident| $body:expr) => {
        impl ::std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                #[allow(unused_variables, reason = "some types print no field")]
                let $s = self;
                let mut $d = f.debug_struct(stringify!($ty));
                $body;
                $d.finish_non_exhaustive()
            }
        }
    };
}

/// `Deserialize` for types that implement [`FromObj`].
macro_rules! deserialize_from_obj {
    ($($ty:ty),* $(,)?) => {$(
        impl<'de> ::serde::Deserialize<'de> for $ty {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_map($crate::openai_chat::ObjVisitor::<$ty>::new())
            }
        }
    )*};
}

/// `Deserialize` for a content enum with `Text(String)` and `Parts(Vec<_>)` variants.
macro_rules! deserialize_string_or_parts {
    ($ty:ident, $expecting:literal) => {
        impl<'de> ::serde::Deserialize<'de> for $ty {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> ::serde::de::Visitor<'de> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_str<E: ::serde::de::Error>(self, s: &str) -> Result<$ty, E> {
                        Ok($ty::Text(s.to_owned()))
                    }
                    fn visit_string<E: ::serde::de::Error>(self, s: String) -> Result<$ty, E> {
                        Ok($ty::Text(s))
                    }
                    fn visit_seq<A: ::serde::de::SeqAccess<'de>>(
                        self,
                        mut seq: A,
                    ) -> Result<$ty, A::Error> {
                        let mut parts = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
                        while let Some(part) = seq.next_element()? {
                            parts.push(part);
                        }
                        Ok($ty::Parts(parts))
                    }
                }
                d.deserialize_any(V)
            }
        }
    };
}

/// `FromObj` for a struct: checks and takes its `type` tag if it has one, then builds it.
macro_rules! from_obj {
    ($ty:ident, $expecting:literal, $(tag: $tag:literal,)? |$obj:ident| $body:expr) => {
        impl FromObj for $ty {
            const EXPECTING: &'static str = $expecting;
            fn from_obj<E: de::Error>(mut $obj: Obj) -> Result<Self, E> {
                $($obj.expect_tag::<E>("type", $tag)?;)?
                Ok($body)
            }
        }
    };
}

mod message;
mod request;
#[cfg(test)]
mod tests;

pub use message::{
    AssistantContent, AssistantPart, FilePart, FileRef, FunctionCall, ImageUrl, ImageUrlPart,
    InputAudio, InputAudioPart, Message, RefusalPart, TextContent, TextPart, ToolCall, UserContent,
    UserPart,
};
pub use request::{FunctionDef, JsonSchema, NamedFunction, ResponseFormat, Stop, Tool, ToolChoice};

/// An object read as raw fields in the order received; typed fields are taken out by key and
/// the rest become the `extra` map.
struct Obj(Vec<(String, Box<RawValue>)>);

impl Obj {
    fn read<'de, A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(0).min(32));
        while let Some(key) = map.next_key::<String>()? {
            fields.push((key, map.next_value()?));
        }
        Ok(Self(fields))
    }

    /// Removes every `key` and returns the last value (a later duplicate wins).
    fn take_raw(&mut self, key: &str) -> Option<Box<RawValue>> {
        let mut found = None;
        let mut i = 0;
        while i < self.0.len() {
            if self.0[i].0 == key {
                found = Some(self.0.remove(i).1);
            } else {
                i += 1;
            }
        }
        found
    }

    /// Takes `key` typed; `None` when absent or `null`.
    fn opt<T: DeserializeOwned, E: de::Error>(
        &mut self,
        key: &'static str,
    ) -> Result<Option<T>, E> {
        match self.take_raw(key) {
            None => Ok(None),
            Some(raw) => {
                serde_json::from_str::<Option<T>>(raw.get()).map_err(|e| field_error(key, &e))
            }
        }
    }

    /// Takes `key` typed; an error when absent or `null`.
    fn req<T: DeserializeOwned, E: de::Error>(&mut self, key: &'static str) -> Result<T, E> {
        self.opt(key)?.ok_or_else(|| E::missing_field(key))
    }

    /// The string value of `key` (the last one), left in place.
    fn peek_str<E: de::Error>(&self, key: &'static str) -> Result<String, E> {
        match self.0.iter().rev().find(|(k, _)| k == key) {
            Some((_, raw)) => serde_json::from_str(raw.get()).map_err(|e| field_error(key, &e)),
            None => Err(E::missing_field(key)),
        }
    }

    /// Takes the tag `key`, which must be `expected`.
    fn expect_tag<E: de::Error>(
        &mut self,
        key: &'static str,
        expected: &'static str,
    ) -> Result<(), E> {
        let tag = self.peek_str::<E>(key)?;
        if tag != expected {
            return Err(E::invalid_value(de::Unexpected::Str(&tag), &expected));
        }
        self.take_raw(key);
        Ok(())
    }

    fn rest(self) -> RawFields {
        let mut extra = RawFields::new();
        extra.extend(self.0);
        extra
    }

    fn into_untyped<E: de::Error>(self) -> Result<Untyped, E> {
        serde_json::value::to_raw_value(&self)
            .map(Untyped::new)
            .map_err(E::custom)
    }
}

impl Serialize for Obj {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// A type read from an [`Obj`].
trait FromObj: Sized {
    const EXPECTING: &'static str;

    fn from_obj<E: de::Error>(obj: Obj) -> Result<Self, E>;
}

struct ObjVisitor<T>(PhantomData<T>);

impl<T> ObjVisitor<T> {
    fn new() -> Self {
        Self(PhantomData)
    }
}

impl<'de, T: FromObj> Visitor<'de> for ObjVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(T::EXPECTING)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::from_obj(Obj::read(map)?)
    }
}

/// An error reading field `key`, without the value (which may be content).
fn field_error<E: de::Error>(key: &str, e: &serde_json::Error) -> E {
    let full = e.to_string();
    let msg = full
        .rsplit_once(" at line ")
        .map_or(full.as_str(), |(m, _)| m);
    for prefix in ["invalid type", "invalid value", "invalid length"] {
        if msg.starts_with(prefix) {
            return match msg.split_once(", expected ") {
                Some((_, expected)) => {
                    E::custom(format_args!("field `{key}`: {prefix}, expected {expected}"))
                }
                None => E::custom(format_args!("field `{key}`: {prefix}")),
            };
        }
    }
    E::custom(format_args!("field `{key}`: {msg}"))
}
