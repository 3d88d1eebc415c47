//! Wire schemas of Anthropic's Messages API: `POST /v1/messages` (request, response, stream
//! events), `POST /v1/messages/count_tokens`, and the error body. Serde only.
//!
//! Nothing is lost on the way through: every object keeps the fields this crate does not type in
//! an `extra` map, and a content block, stream event or delta of a `type` this crate does not know
//! is kept whole as [`Untyped`], so a body read and written again says what it said. Types that
//! carry prompt or response content print only their shape in `Debug` (roles, block types, ids,
//! names, counts), never the content itself.
//!
//! Objects are read by hand-rolled visitors rather than `#[serde(flatten)]`, `untagged` or
//! internally tagged derives: those buffer the input into serde's own content tree, which cannot
//! hold the raw JSON (`RawValue`) that pass-through fields are kept as.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::value::BorrowedStrDeserializer;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

use crate::raw::RawFields;
pub use crate::raw::Untyped;

/// Reads an object's fields from a map and evaluates to `$ctor { .. }`; errors return from the
/// enclosing function. `required` fields must be present, `defaulted` ones default when absent or
/// null, `optional` ones are `Option`s (null reads as absent), `raw` ones are kept as received
/// (null included), `reserved` keys are refused (the tag of a tagged object), and the remaining
/// fields go to `extra` or, without it, are skipped.
macro_rules! read_fields {
    ($map:ident => $ctor:path {
        required { $($req:ident: $rty:ty = $rkey:literal),* $(,)? }
        defaulted { $($def:ident: $dty:ty = $dkey:literal),* $(,)? }
        optional { $($opt:ident: $oty:ty = $okey:literal),* $(,)? }
        raw { $($raw:ident = $rawkey:literal),* $(,)? }
        reserved { $($res:literal),* $(,)? }
        $(extra: $extra:ident)?
    }) => {{
        $(let mut $req: Option<$rty> = None;)*
        $(let mut $def: Option<$dty> = None;)*
        $(let mut $opt: Option<$oty> = None;)*
        $(let mut $raw: Option<Box<::serde_json::value::RawValue>> = None;)*
        $(let mut $extra = $crate::raw::RawFields::new();)?
        while let Some(key) = $map.next_key::<::std::borrow::Cow<'_, str>>()? {
            match key.as_ref() {
                $($rkey => {
                    if $req.is_some() {
                        return Err(::serde::de::Error::duplicate_field($rkey));
                    }
                    $req = Some($map.next_value()?);
                })*
                $($dkey => $def = $map.next_value::<Option<$dty>>()?,)*
                $($okey => $opt = $map.next_value::<Option<$oty>>()?,)*
                $($rawkey => $raw = Some($map.next_value()?),)*
                $($res => return Err(::serde::de::Error::duplicate_field($res)),)*
                _ => {
                    $(
                        let value = $map.next_value()?;
                        $extra.push(key.into_owned(), value);
                        continue;
                    )?
                    #[allow(unreachable_code, reason = "reached only without an `extra` map")]
                    $map.next_value::<::serde::de::IgnoredAny>()?;
                }
            }
        }
        $ctor {
            $($req: match $req {
                Some(v) => v,
                None => return Err(::serde::de::Error::missing_field($rkey)),
            },)*
            $($def: $def.unwrap_or_default(),)*
            $($opt,)*
            $($raw,)*
            $($extra,)?
        }
    }};
}

/// `Deserialize` for a struct with a `from_map` function.
macro_rules! deserialize_from_map {
    ($ty:ident, $expecting:literal) => {
        impl<'de> ::serde::Deserialize<'de> for $ty {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> ::serde::de::Visitor<'de> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_map<A: ::serde::de::MapAccess<'de>>(
                        self,
                        mut map: A,
                    ) -> Result<$ty, A::Error> {
                        $ty::from_map(&mut map)
                    }
                }
                d.deserialize_map(V)
            }
        }
    };
}

/// `Deserialize` for a `type`-tagged enum that implements [`Tagged`].
macro_rules! deserialize_tagged {
    ($ty:ident) => {
        impl<'de> ::serde::Deserialize<'de> for $ty {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_map($crate::anthropic::TaggedVisitor::<$ty>::new())
            }
        }
    };
}

/// A string enum of known values that keeps any other value as received.
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $s:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
            /// A value this crate does not know, kept as received.
            Other(String),
        }

        impl $name {
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $s,)*
                    Self::Other(s) => s,
                }
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                match s {
                    $($s => Self::$variant,)*
                    other => Self::Other(other.to_owned()),
                }
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_str($crate::anthropic::StrVisitor::<$name>::new())
            }
        }
    };
}

// Content never reaches logs: these types print their shape, not their text.
macro_rules! redacted_debug {
    ($ty:ty, |$s:ident, $d:ident| $body:expr) => {
        impl ::std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                let $s = self;
                let mut $d = f.debug_struct(stringify!($ty));
                $body;
                $d.finish_non_exhaustive()
            }
        }
    };
}

mod request;
mod response;
mod stream;

pub use request::{
    CountTokensRequest, Message, MessagesRequest, Metadata, Thinking, ThinkingType, Tool,
    ToolChoice, ToolChoiceType,
};
pub use response::{
    CountTokensResponse, ErrorDetail, ErrorResponse, ErrorType, MessagesResponse, StopReason, Usage,
};
pub use stream::{ContentDelta, DeltaUsage, MessageDelta, StreamEvent};

/// The author of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
}

/// `cache_control`: a prompt-caching breakpoint on a block, tool or system block.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CacheControl {
    /// `"ephemeral"`, the only type the reference lists.
    #[serde(rename = "type")]
    pub kind: String,
    /// How long the entry lives: `"5m"` (the default) or `"1h"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
    #[serde(flatten)]
    pub extra: RawFields,
}

impl CacheControl {
    pub fn ephemeral() -> Self {
        Self {
            kind: "ephemeral".to_owned(),
            ttl: None,
            extra: RawFields::new(),
        }
    }

    fn from_map<'de, A: MapAccess<'de>>(map: &mut A) -> Result<Self, A::Error> {
        Ok(read_fields!(map => Self {
            required { kind: String = "type" }
            defaulted {}
            optional { ttl: String = "ttl" }
            raw {}
            reserved {}
            extra: extra
        }))
    }
}

deserialize_from_map!(CacheControl, "a cache_control object");

/// The content of a message, a system prompt or a tool result: a string (shorthand for one text
/// block) or an array of blocks.
#[derive(Clone, Serialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Blocks(Vec<ContentBlock>),
}

impl fmt::Debug for Content {
    /// `Text` for a string, the blocks' shapes for an array.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Text(_) => f.write_str("Text"),
            Self::Blocks(blocks) => f.debug_list().entries(blocks).finish(),
        }
    }
}

impl From<String> for Content {
    fn from(text: String) -> Self {
        Self::Text(text)
    }
}

impl<'de> Deserialize<'de> for Content {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Content;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of content blocks")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Content, E> {
                Ok(Content::Text(s.to_owned()))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Content, E> {
                Ok(Content::Text(s))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Content, A::Error> {
                let mut blocks = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
                while let Some(block) = seq.next_element()? {
                    blocks.push(block);
                }
                Ok(Content::Blocks(blocks))
            }
        }
        d.deserialize_any(V)
    }
}

/// One block of content, tagged by `type`. Requests and responses share these; a type this crate
/// does not know (server tools, search results, newer blocks) is kept whole as [`Untyped`].
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentBlock {
    Text(TextBlock),
    Image(ImageBlock),
    ToolUse(ToolUseBlock),
    ToolResult(ToolResultBlock),
    Thinking(ThinkingBlock),
    RedactedThinking(RedactedThinkingBlock),
    Document(DocumentBlock),
    #[serde(untagged)]
    Other(Untyped),
}

impl ContentBlock {
    /// A text block with only its text.
    pub fn text(text: impl Into<String>) -> Self {
        Self::Text(TextBlock {
            text: text.into(),
            citations: None,
            cache_control: None,
            extra: RawFields::new(),
        })
    }
}

impl Tagged for ContentBlock {
    const EXPECTING: &'static str = "a content block object";

    fn variant<'de, A: MapAccess<'de>>(tag: &str, map: &mut A) -> Result<Option<Self>, A::Error> {
        Ok(Some(match tag {
            "text" => Self::Text(read_fields!(map => TextBlock {
                required { text: String = "text" }
                defaulted {}
                optional { cache_control: CacheControl = "cache_control" }
                raw { citations = "citations" }
                reserved { "type" }
                extra: extra
            })),
            "image" => Self::Image(read_fields!(map => ImageBlock {
                required { source: ImageSource = "source" }
                defaulted {}
                optional { cache_control: CacheControl = "cache_control" }
                raw {}
                reserved { "type" }
                extra: extra
            })),
            "tool_use" => Self::ToolUse(read_fields!(map => ToolUseBlock {
                required { id: String = "id", name: String = "name", input: Box<RawValue> = "input" }
                defaulted {}
                optional { cache_control: CacheControl = "cache_control" }
                raw {}
                reserved { "type" }
                extra: extra
            })),
            "tool_result" => Self::ToolResult(read_fields!(map => ToolResultBlock {
                required { tool_use_id: String = "tool_use_id" }
                defaulted {}
                optional {
                    content: Content = "content",
                    is_error: bool = "is_error",
                    cache_control: CacheControl = "cache_control",
                }
                raw {}
                reserved { "type" }
                extra: extra
            })),
            "thinking" => Self::Thinking(read_fields!(map => ThinkingBlock {
                required { thinking: String = "thinking" }
                defaulted {}
                optional { signature: String = "signature" }
                raw {}
                reserved { "type" }
                extra: extra
            })),
            "redacted_thinking" => {
                Self::RedactedThinking(read_fields!(map => RedactedThinkingBlock {
                    required { data: String = "data" }
                    defaulted {}
                    optional {}
                    raw {}
                    reserved { "type" }
                    extra: extra
                }))
            }
            "document" => Self::Document(read_fields!(map => DocumentBlock {
                required {}
                defaulted {}
                optional { cache_control: CacheControl = "cache_control" }
                raw {}
                reserved { "type" }
                extra: extra
            })),
            _ => return Ok(None),
        }))
    }

    fn untyped(raw: Untyped) -> Self {
        Self::Other(raw)
    }
}

deserialize_tagged!(ContentBlock);

/// `text`: text, in a request or a response.
#[derive(Clone, Serialize)]
pub struct TextBlock {
    pub text: String,
    /// Where the text comes from (documents, search results), kept as received.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub citations: Option<Box<RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<CacheControl>,
    #[serde(flatten)]
    pub extra: RawFields,
}

/// `image`: an image in a request.
#[derive(Clone, Serialize)]
pub struct ImageBlock {
    pub source: ImageSource,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<CacheControl>,
    #[serde(flatten)]
    pub extra: RawFields,
}

/// Where an image comes from, tagged by `type`.
#[derive(Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ImageSource {
    /// The image itself, base64-encoded (`media_type`: `image/jpeg`, `image/png`, ...).
    Base64 {
        media_type: String,
        data: String,
        #[serde(flatten)]
        extra: RawFields,
    },
    /// An image the API fetches.
    Url {
        url: String,
        #[serde(flatten)]
        extra: RawFields,
    },
    /// Another source type (a file id, ...), kept as received.
    #[serde(untagged)]
    Other(Untyped),
}

impl Tagged for ImageSource {
    const EXPECTING: &'static str = "an image source object";

    fn variant<'de, A: MapAccess<'de>>(tag: &str, map: &mut A) -> Result<Option<Self>, A::Error> {
        Ok(Some(match tag {
            "base64" => read_fields!(map => Self::Base64 {
                required { media_type: String = "media_type", data: String = "data" }
                defaulted {}
                optional {}
                raw {}
                reserved { "type" }
                extra: extra
            }),
            "url" => read_fields!(map => Self::Url {
                required { url: String = "url" }
                defaulted {}
                optional {}
                raw {}
                reserved { "type" }
                extra: extra
            }),
            _ => return Ok(None),
        }))
    }

    fn untyped(raw: Untyped) -> Self {
        Self::Other(raw)
    }
}

deserialize_tagged!(ImageSource);

impl fmt::Debug for ImageSource {
    /// The source type and media type; never the data or the URL.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Base64 { media_type, .. } => f
                .debug_struct("Base64")
                .field("media_type", media_type)
                .finish_non_exhaustive(),
            Self::Url { .. } => f.debug_struct("Url").finish_non_exhaustive(),
            Self::Other(raw) => raw.fmt(f),
        }
    }
}

/// `tool_use`: the model calls a tool (response), or the call as sent back in the history.
#[derive(Clone, Serialize)]
pub struct ToolUseBlock {
    pub id: String,
    pub name: String,
    /// The tool's arguments, an object, kept as received.
    pub input: Box<RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<CacheControl>,
    #[serde(flatten)]
    pub extra: RawFields,
}

/// `tool_result`: what a tool returned, in a user message.
#[derive(Clone, Serialize)]
pub struct ToolResultBlock {
    pub tool_use_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_error: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<CacheControl>,
    #[serde(flatten)]
    pub extra: RawFields,
}

/// `thinking`: the model's extended thinking, signed so it can be sent back.
#[derive(Clone, Serialize)]
pub struct ThinkingBlock {
    pub thinking: String,
    /// Absent in the `content_block_start` of a stream: it comes as a `signature_delta`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    #[serde(flatten)]
    pub extra: RawFields,
}

/// `redacted_thinking`: thinking the API returns encrypted.
#[derive(Clone, Serialize)]
pub struct RedactedThinkingBlock {
    pub data: String,
    #[serde(flatten)]
    pub extra: RawFields,
}

/// `document`: a PDF or text document in a request. Only `cache_control` is typed; the source,
/// title, context and citation settings are kept as received in `extra`.
#[derive(Clone, Serialize)]
pub struct DocumentBlock {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<CacheControl>,
    #[serde(flatten)]
    pub extra: RawFields,
}

redacted_debug!(TextBlock, |s, d| d
    .field("citations", &s.citations.is_some())
    .field("cache_control", &s.cache_control)
    .field("extra", &s.extra));
redacted_debug!(ImageBlock, |s, d| d
    .field("source", &s.source)
    .field("cache_control", &s.cache_control));
redacted_debug!(ToolUseBlock, |s, d| d
    .field("id", &s.id)
    .field("name", &s.name)
    .field("cache_control", &s.cache_control));
redacted_debug!(ToolResultBlock, |s, d| d
    .field("tool_use_id", &s.tool_use_id)
    .field("content", &s.content)
    .field("is_error", &s.is_error)
    .field("cache_control", &s.cache_control));
redacted_debug!(ThinkingBlock, |s, d| d
    .field("signed", &s.signature.is_some()));
redacted_debug!(RedactedThinkingBlock, |s, d| d.field("extra", &s.extra));
redacted_debug!(DocumentBlock, |s, d| d
    .field("cache_control", &s.cache_control)
    .field("extra", &s.extra));

/// A `type`-tagged object: reads the variant of a tag from the object's other fields.
trait Tagged: Sized {
    const EXPECTING: &'static str;

    /// The variant for `tag`, read from the rest of the map; `None`, having read nothing, for a
    /// tag this crate does not know.
    fn variant<'de, A: MapAccess<'de>>(tag: &str, map: &mut A) -> Result<Option<Self>, A::Error>;

    fn untyped(raw: Untyped) -> Self;
}

/// Reads a [`Tagged`] object. When `type` comes first, as Anthropic and its SDKs write it, the
/// variant reads straight from the input. Otherwise the object is first read as raw fields, then
/// the variant reads from those.
struct TaggedVisitor<T>(PhantomData<T>);

impl<T> TaggedVisitor<T> {
    fn new() -> Self {
        Self(PhantomData)
    }
}

impl<'de, T: Tagged> Visitor<'de> for TaggedVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(T::EXPECTING)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
        let mut object = Object::default();
        let mut unknown = false;
        match map.next_key::<Cow<'_, str>>()? {
            None => return Err(de::Error::missing_field("type")),
            Some(key) if key == "type" => {
                let tag: String = map.next_value()?;
                if let Some(value) = T::variant(&tag, &mut map)? {
                    return Ok(value);
                }
                unknown = true;
                let raw = serde_json::value::to_raw_value(&tag)
                    .map_err(<A::Error as de::Error>::custom)?;
                object.0.push(("type".to_owned(), raw));
            }
            Some(key) => {
                let value = map.next_value()?;
                object.0.push((key.into_owned(), value));
            }
        }
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value()?;
            object.0.push((key, value));
        }
        if !unknown {
            let tag = match object.0.iter().rev().find(|(k, _)| k == "type") {
                Some((_, raw)) => {
                    serde_json::from_str::<String>(raw.get()).map_err(scrub::<A::Error>)?
                }
                None => return Err(de::Error::missing_field("type")),
            };
            let mut access = ObjectAccess {
                entries: object.0.iter(),
                current: None,
            };
            if let Some(value) = T::variant(&tag, &mut access).map_err(scrub::<A::Error>)? {
                return Ok(value);
            }
        }
        let raw =
            serde_json::value::to_raw_value(&object).map_err(<A::Error as de::Error>::custom)?;
        Ok(T::untyped(Untyped::new(raw)))
    }
}

/// An object read as raw fields, in the order received.
#[derive(Default)]
struct Object(Vec<(String, Box<RawValue>)>);

impl Serialize for Object {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// The fields of an [`Object`] but its `type`, as a map to read a variant from. An error names
/// the field it comes from, since the position in the input is lost.
struct ObjectAccess<'a> {
    entries: std::slice::Iter<'a, (String, Box<RawValue>)>,
    current: Option<(&'a str, &'a RawValue)>,
}

impl<'a> MapAccess<'a> for ObjectAccess<'a> {
    type Error = serde_json::Error;

    fn next_key_seed<K: DeserializeSeed<'a>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        for (key, value) in self.entries.by_ref() {
            if key != "type" {
                self.current = Some((key.as_str(), &**value));
                return seed
                    .deserialize(BorrowedStrDeserializer::new(key.as_str()))
                    .map(Some);
            }
        }
        Ok(None)
    }

    fn next_value_seed<V: DeserializeSeed<'a>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, Self::Error> {
        let Some((key, value)) = self.current.take() else {
            return Err(de::Error::custom("a value without its key"));
        };
        seed.deserialize(value).map_err(|e| {
            let msg = crate::error::scrubbed(&e);
            de::Error::custom(match msg.rsplit_once(" at `") {
                Some((m, path)) => format!("{m} at `{key}.{path}"),
                None => format!("{msg} at `{key}`"),
            })
        })
    }
}

fn scrub<E: de::Error>(e: serde_json::Error) -> E {
    E::custom(crate::error::scrubbed(&e))
}

/// Reads a string enum ([`string_enum!`]) without allocating for known values.
struct StrVisitor<T>(PhantomData<T>);

impl<T> StrVisitor<T> {
    fn new() -> Self {
        Self(PhantomData)
    }
}

impl<T: for<'a> From<&'a str>> Visitor<'_> for StrVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<T, E> {
        Ok(T::from(s))
    }
}

#[cfg(test)]
mod tests {
    // Samples are written from Anthropic's published reference (facts, not text):
    // - Create a Message, https://docs.anthropic.com/claude/reference/messages_post (now
    //   https://platform.claude.com/docs/en/api/messages): body, content blocks, response, usage,
    //   stop reasons.
    // - Count tokens in a Message,
    //   https://platform.claude.com/docs/en/api/resources/messages/methods/count_tokens
    // - Streaming Messages, https://platform.claude.com/docs/en/build-with-claude/streaming:
    //   events, deltas, and the tool-use and extended-thinking example streams.
    // - Errors, https://docs.anthropic.com/en/api/errors (read at anthropic.mintlify.app): error
    //   types, their statuses, the error shape with `request_id`.
    // - CacheControlEphemeral in the SDK reference (ttl "5m" or "1h", default "5m").

    use serde_json::{Value, json};

    use super::*;

    /// Reads `text` as `T`, checks it writes back to the same JSON value, and returns it.
    pub(super) fn round_trip<T: serde::de::DeserializeOwned + Serialize>(
        text: &str,
    ) -> Result<T, serde_json::Error> {
        let typed: T = serde_json::from_str(text)?;
        let back = serde_json::to_value(&typed)?;
        let orig: Value = serde_json::from_str(text)?;
        assert_eq!(back, orig);
        Ok(typed)
    }

    #[test]
    fn blocks_typed_and_round_trip() -> Result<(), serde_json::Error> {
        let blocks: Vec<ContentBlock> = round_trip(
            r#"[
            {"type":"text","text":"hi","cache_control":{"type":"ephemeral","ttl":"1h"},"x":1},
            {"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBO"}},
            {"type":"image","source":{"type":"url","url":"https://example.com/a.jpg"}},
            {"type":"image","source":{"type":"file","file_id":"file_1"}},
            {"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Paris","n":1.50}},
            {"type":"tool_result","tool_use_id":"toolu_1","content":"15 C","is_error":false},
            {"type":"tool_result","tool_use_id":"toolu_2","content":[{"type":"text","text":"ok"}]},
            {"type":"thinking","thinking":"hmm","signature":"sig"},
            {"type":"redacted_thinking","data":"enc"},
            {"type":"document","source":{"type":"text","media_type":"text/plain","data":"d"},
             "title":"t","citations":{"enabled":true},"cache_control":{"type":"ephemeral"}},
            {"type":"text","text":"cited","citations":[{"type":"char_location","cited_text":"d",
             "document_index":0,"start_char_index":0,"end_char_index":1}]},
            {"type":"text","text":"none","citations":null},
            {"type":"server_tool_use","id":"srvtoolu_1","name":"web_search","input":{"q":"x"}}
        ]"#,
        )?;
        assert_eq!(blocks.len(), 13);
        let ContentBlock::Text(text) = &blocks[0] else {
            panic!("{:?}", blocks[0]);
        };
        assert_eq!(text.text, "hi");
        assert_eq!(text.extra.keys().collect::<Vec<_>>(), ["x"]);
        let cache = text
            .cache_control
            .as_ref()
            .map(|c| (c.kind.as_str(), c.ttl.as_deref()));
        assert_eq!(cache, Some(("ephemeral", Some("1h"))));
        assert!(matches!(&blocks[1], ContentBlock::Image(ImageBlock {
            source: ImageSource::Base64 { media_type, .. }, .. }) if media_type == "image/png"));
        assert!(matches!(&blocks[2],
            ContentBlock::Image(ImageBlock { source: ImageSource::Url { url, .. }, .. })
                if url.ends_with("a.jpg")));
        assert!(matches!(&blocks[3],
            ContentBlock::Image(ImageBlock { source: ImageSource::Other(raw), .. })
                if raw.kind().as_deref() == Some("file")));
        let ContentBlock::ToolUse(tool) = &blocks[4] else {
            panic!("{:?}", blocks[4]);
        };
        assert_eq!(
            (tool.id.as_str(), tool.name.as_str()),
            ("toolu_1", "get_weather")
        );
        assert_eq!(tool.input.get(), r#"{"city":"Paris","n":1.50}"#);
        assert!(
            matches!(&blocks[5], ContentBlock::ToolResult(ToolResultBlock {
            content: Some(Content::Text(t)), is_error: Some(false), .. }) if t == "15 C")
        );
        assert!(
            matches!(&blocks[6], ContentBlock::ToolResult(ToolResultBlock {
            content: Some(Content::Blocks(b)), .. }) if b.len() == 1)
        );
        assert!(matches!(&blocks[7], ContentBlock::Thinking(ThinkingBlock {
            thinking, signature: Some(s), .. }) if thinking == "hmm" && s == "sig"));
        assert!(matches!(&blocks[8], ContentBlock::RedactedThinking(b) if b.data == "enc"));
        let ContentBlock::Document(doc) = &blocks[9] else {
            panic!("{:?}", blocks[9]);
        };
        assert!(doc.cache_control.is_some());
        assert_eq!(
            doc.extra.keys().collect::<Vec<_>>(),
            ["source", "title", "citations"]
        );
        assert!(
            matches!(&blocks[10], ContentBlock::Text(TextBlock { citations: Some(c), .. })
            if c.get().contains("char_location"))
        );
        assert!(
            matches!(&blocks[11], ContentBlock::Text(TextBlock { citations: Some(c), .. })
            if c.get() == "null")
        );
        assert!(matches!(&blocks[12],
            ContentBlock::Other(raw) if raw.kind().as_deref() == Some("server_tool_use")));
        Ok(())
    }

    #[test]
    fn type_need_not_come_first() -> Result<(), serde_json::Error> {
        let block: ContentBlock =
            round_trip(r#"{"input":{"a":[1]},"name":"f","type":"tool_use","id":"t","z":null}"#)?;
        assert!(matches!(&block, ContentBlock::ToolUse(t)
            if t.input.get() == r#"{"a":[1]}"# && t.extra.keys().eq(["z"]) && t.name == "f"));
        let block: ContentBlock = round_trip(r#"{"data":"x","type":"brand_new","n":2}"#)?;
        assert!(matches!(&block, ContentBlock::Other(raw)
            if raw.get().get() == r#"{"data":"x","type":"brand_new","n":2}"#));
        Ok(())
    }

    #[test]
    fn bad_blocks_fail_without_echoing_values() {
        for (text, expected) in [
            (r#"{"type":"text"}"#, "missing field `text`"),
            (r#"{"text":"SECRET-CANARY"}"#, "missing field `type`"),
            (
                r#"{"type":"text","text":"a","type":"text"}"#,
                "duplicate field `type`",
            ),
            (r#"{"type":7,"text":"SECRET-CANARY"}"#, "expected a string"),
            (
                r#"{"text":["SECRET-CANARY"],"type":"text"}"#,
                "expected a string at `text`",
            ),
            (
                r#"{"is_error":"SECRET-CANARY","type":"tool_result","tool_use_id":"t"}"#,
                "invalid type, expected a boolean at `is_error`",
            ),
            (
                r#"{"source":{"data":["SECRET-CANARY"],"media_type":"x","type":"base64"},"type":"image"}"#,
                "invalid type, expected a string at `source.data`",
            ),
        ] {
            match serde_json::from_str::<ContentBlock>(text) {
                Ok(block) => panic!("{text} read as {block:?}"),
                Err(e) => {
                    let message = e.to_string();
                    assert!(!message.contains("SECRET-CANARY"), "{message}");
                    assert!(message.contains(expected), "{message}");
                }
            }
        }
    }

    #[test]
    fn content_is_a_string_or_blocks() -> Result<(), serde_json::Error> {
        assert!(matches!(round_trip::<Content>(r#""hi""#)?, Content::Text(t) if t == "hi"));
        assert!(matches!(round_trip::<Content>("[]")?, Content::Blocks(b) if b.is_empty()));
        assert!(serde_json::from_str::<Content>("{}").is_err());
        Ok(())
    }

    #[test]
    fn debug_prints_shape_only() -> Result<(), serde_json::Error> {
        let blocks: Vec<ContentBlock> = serde_json::from_value(json!([
            {"type":"text","text":"SECRET-CANARY"},
            {"type":"image","source":{"type":"base64","media_type":"image/png","data":"SECRET-CANARY"}},
            {"type":"image","source":{"type":"url","url":"https://SECRET-CANARY"}},
            {"type":"tool_use","id":"toolu_1","name":"f","input":{"q":"SECRET-CANARY"}},
            {"type":"tool_result","tool_use_id":"toolu_1","content":"SECRET-CANARY"},
            {"type":"thinking","thinking":"SECRET-CANARY","signature":"SECRET-CANARY"},
            {"type":"redacted_thinking","data":"SECRET-CANARY"},
            {"type":"document","source":{"type":"text","data":"SECRET-CANARY"}},
            {"type":"mystery","data":"SECRET-CANARY"}
        ]))?;
        let printed = format!("{blocks:?}");
        assert!(!printed.contains("SECRET-CANARY"), "{printed}");
        for shape in [
            "TextBlock",
            "image/png",
            "toolu_1",
            "\"f\"",
            "mystery",
            "source",
        ] {
            assert!(printed.contains(shape), "{shape} not in {printed}");
        }
        Ok(())
    }
}
