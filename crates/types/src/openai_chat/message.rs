//! Chat messages by role, their content parts and the assistant's tool calls.

use std::borrow::Cow;
use std::fmt;

use serde::Serialize;
use serde::de;

use super::{FromObj, Obj, Untyped};
use crate::raw::RawFields;

/// One message of a chat request, tagged by `role`. Fields this module does not type (`audio`,
/// the legacy `function_call`, vendor fields) are kept in `extra`.
#[derive(Clone, Serialize)]
#[serde(tag = "role", rename_all = "lowercase")]
pub enum Message {
    System {
        content: TextContent,
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(flatten)]
        extra: RawFields,
    },
    /// The newer name of `system` for reasoning models.
    Developer {
        content: TextContent,
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(flatten)]
        extra: RawFields,
    },
    User {
        content: UserContent,
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(flatten)]
        extra: RawFields,
    },
    /// `content` may be absent or `null` when the message carries `tool_calls`; it is always
    /// written, as `null` when `None`.
    Assistant {
        content: Option<AssistantContent>,
        #[serde(skip_serializing_if = "Option::is_none")]
        refusal: Option<String>,
        /// Empty when absent.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<ToolCall>,
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// Not in OpenAI's reference: the reasoning text some OpenAI-compatible servers
        /// (DeepSeek, vLLM) return and accept back.
        #[serde(skip_serializing_if = "Option::is_none")]
        reasoning_content: Option<String>,
        #[serde(flatten)]
        extra: RawFields,
    },
    /// The result of the tool call `tool_call_id`.
    Tool {
        content: TextContent,
        tool_call_id: String,
        #[serde(flatten)]
        extra: RawFields,
    },
    /// Legacy (deprecated by `tool`): the result of the function `name`.
    Function {
        content: Option<String>,
        name: String,
        #[serde(flatten)]
        extra: RawFields,
    },
}

const ROLES: &[&str] = &[
    "system",
    "developer",
    "user",
    "assistant",
    "tool",
    "function",
];

impl Message {
    /// The `role` as written on the wire.
    pub fn role_str(&self) -> &'static str {
        match self {
            Self::System { .. } => "system",
            Self::Developer { .. } => "developer",
            Self::User { .. } => "user",
            Self::Assistant { .. } => "assistant",
            Self::Tool { .. } => "tool",
            Self::Function { .. } => "function",
        }
    }

    /// The fields this module does not type.
    pub fn extra(&self) -> &RawFields {
        match self {
            Self::System { extra, .. }
            | Self::Developer { extra, .. }
            | Self::User { extra, .. }
            | Self::Assistant { extra, .. }
            | Self::Tool { extra, .. }
            | Self::Function { extra, .. } => extra,
        }
    }
}

impl FromObj for Message {
    const EXPECTING: &'static str = "a chat message object";

    fn from_obj<E: de::Error>(mut obj: Obj) -> Result<Self, E> {
        let role = obj.peek_str::<E>("role")?;
        obj.take_raw("role");
        Ok(match role.as_str() {
            "system" | "developer" => {
                let content = obj.req("content")?;
                let name = obj.opt("name")?;
                let extra = obj.rest();
                if role == "system" {
                    Self::System {
                        content,
                        name,
                        extra,
                    }
                } else {
                    Self::Developer {
                        content,
                        name,
                        extra,
                    }
                }
            }
            "user" => Self::User {
                content: obj.req("content")?,
                name: obj.opt("name")?,
                extra: obj.rest(),
            },
            "assistant" => Self::Assistant {
                content: obj.opt("content")?,
                refusal: obj.opt("refusal")?,
                tool_calls: obj.opt("tool_calls")?.unwrap_or_default(),
                name: obj.opt("name")?,
                reasoning_content: obj.opt("reasoning_content")?,
                extra: obj.rest(),
            },
            "tool" => Self::Tool {
                content: obj.req("content")?,
                tool_call_id: obj.req("tool_call_id")?,
                extra: obj.rest(),
            },
            "function" => Self::Function {
                content: obj.opt("content")?,
                name: obj.req("name")?,
                extra: obj.rest(),
            },
            other => return Err(E::unknown_variant(other, ROLES)),
        })
    }
}

impl fmt::Debug for Message {
    /// Role, content shape, names, ids and tool calls; never text or arguments.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Message");
        d.field("role", &self.role_str());
        match self {
            Self::System { content, name, .. } | Self::Developer { content, name, .. } => {
                d.field("content", content).field("name", name);
            }
            Self::User { content, name, .. } => {
                d.field("content", content).field("name", name);
            }
            Self::Assistant {
                content,
                refusal,
                tool_calls,
                name,
                reasoning_content,
                ..
            } => {
                d.field("content", content)
                    .field("refusal", &refusal.is_some())
                    .field("tool_calls", tool_calls)
                    .field("name", name)
                    .field("reasoning_content", &reasoning_content.is_some());
            }
            Self::Tool {
                content,
                tool_call_id,
                ..
            } => {
                d.field("content", content)
                    .field("tool_call_id", tool_call_id);
            }
            Self::Function { content, name, .. } => {
                d.field("content", &content.is_some()).field("name", name);
            }
        }
        d.field("extra", self.extra()).finish()
    }
}

/// The content of a system, developer or tool message: a string or an array of text parts.
#[derive(Clone, Serialize)]
#[serde(untagged)]
pub enum TextContent {
    Text(String),
    Parts(Vec<TextPart>),
}

impl TextContent {
    /// The text, with the parts concatenated with no separator. OpenAI documents no separator
    /// and treats the parts as one text (as do LiteLLM's and the OpenAI SDKs' flattening); an
    /// adapter whose target takes several blocks (Anthropic's `system`, Gemini's `parts`) should
    /// map [`Self::Parts`] part by part instead.
    pub fn joined(&self) -> Cow<'_, str> {
        match self {
            Self::Text(text) => Cow::Borrowed(text),
            Self::Parts(parts) => match parts.as_slice() {
                [one] => Cow::Borrowed(&one.text),
                parts => Cow::Owned(parts.iter().map(|p| p.text.as_str()).collect()),
            },
        }
    }
}

deserialize_string_or_parts!(TextContent, "a string or an array of text parts");

impl fmt::Debug for TextContent {
    /// `Text` for a string, the part types for an array.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Text(_) => f.write_str("Text"),
            Self::Parts(parts) => f.debug_list().entries(parts).finish(),
        }
    }
}

/// The content of a user message: a string or an array of parts.
#[derive(Clone, Serialize)]
#[serde(untagged)]
pub enum UserContent {
    Text(String),
    Parts(Vec<UserPart>),
}

impl UserContent {
    /// The texts, in order: the string, or the text parts' texts.
    pub fn text_parts(&self) -> impl Iterator<Item = &str> {
        let (one, parts) = match self {
            Self::Text(text) => (Some(text.as_str()), &[][..]),
            Self::Parts(parts) => (None, parts.as_slice()),
        };
        one.into_iter().chain(parts.iter().filter_map(|p| match p {
            UserPart::Text(t) => Some(t.text.as_str()),
            _ => None,
        }))
    }
}

deserialize_string_or_parts!(UserContent, "a string or an array of content parts");

impl fmt::Debug for UserContent {
    /// `Text` for a string, the part types for an array.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Text(_) => f.write_str("Text"),
            Self::Parts(parts) => f.debug_list().entries(parts).finish(),
        }
    }
}

/// The content of an assistant message: a string or an array of text and refusal parts.
#[derive(Clone, Serialize)]
#[serde(untagged)]
pub enum AssistantContent {
    Text(String),
    Parts(Vec<AssistantPart>),
}

deserialize_string_or_parts!(
    AssistantContent,
    "a string or an array of text or refusal parts"
);

impl fmt::Debug for AssistantContent {
    /// `Text` for a string, the part types for an array.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Text(_) => f.write_str("Text"),
            Self::Parts(parts) => f.debug_list().entries(parts).finish(),
        }
    }
}

/// A part of user content, by `type`; a type this module does not know is kept whole.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum UserPart {
    Text(TextPart),
    ImageUrl(ImageUrlPart),
    InputAudio(InputAudioPart),
    File(FilePart),
    Other(Untyped),
}

impl FromObj for UserPart {
    const EXPECTING: &'static str = "a content part object";

    fn from_obj<E: de::Error>(obj: Obj) -> Result<Self, E> {
        Ok(match obj.peek_str::<E>("type")?.as_str() {
            "text" => Self::Text(TextPart::from_obj(obj)?),
            "image_url" => Self::ImageUrl(ImageUrlPart::from_obj(obj)?),
            "input_audio" => Self::InputAudio(InputAudioPart::from_obj(obj)?),
            "file" => Self::File(FilePart::from_obj(obj)?),
            _ => Self::Other(obj.into_untyped()?),
        })
    }
}

/// A part of assistant content, by `type`.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum AssistantPart {
    Text(TextPart),
    Refusal(RefusalPart),
}

impl FromObj for AssistantPart {
    const EXPECTING: &'static str = "a text or refusal part object";

    fn from_obj<E: de::Error>(obj: Obj) -> Result<Self, E> {
        Ok(match obj.peek_str::<E>("type")?.as_str() {
            "text" => Self::Text(TextPart::from_obj(obj)?),
            "refusal" => Self::Refusal(RefusalPart::from_obj(obj)?),
            other => return Err(E::unknown_variant(other, &["text", "refusal"])),
        })
    }
}

/// `{"type": "text", "text": ...}`.
#[derive(Clone, Serialize)]
#[serde(tag = "type", rename = "text")]
pub struct TextPart {
    pub text: String,
    #[serde(flatten)]
    pub extra: RawFields,
}

/// `{"type": "refusal", "refusal": ...}`.
#[derive(Clone, Serialize)]
#[serde(tag = "type", rename = "refusal")]
pub struct RefusalPart {
    pub refusal: String,
    #[serde(flatten)]
    pub extra: RawFields,
}

/// `{"type": "image_url", "image_url": {...}}`.
#[derive(Clone, Serialize)]
#[serde(tag = "type", rename = "image_url")]
pub struct ImageUrlPart {
    pub image_url: ImageUrl,
    #[serde(flatten)]
    pub extra: RawFields,
}

/// An image by URL or as a `data:` URL of base64.
#[derive(Clone, Serialize)]
pub struct ImageUrl {
    pub url: String,
    /// `"auto"`, `"low"` or `"high"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(flatten)]
    pub extra: RawFields,
}

/// `{"type": "input_audio", "input_audio": {...}}`.
#[derive(Clone, Serialize)]
#[serde(tag = "type", rename = "input_audio")]
pub struct InputAudioPart {
    pub input_audio: InputAudio,
    #[serde(flatten)]
    pub extra: RawFields,
}

/// Base64 audio and its format (`"wav"` or `"mp3"`).
#[derive(Clone, Serialize)]
pub struct InputAudio {
    pub data: String,
    pub format: String,
    #[serde(flatten)]
    pub extra: RawFields,
}

/// `{"type": "file", "file": {...}}`.
#[derive(Clone, Serialize)]
#[serde(tag = "type", rename = "file")]
pub struct FilePart {
    pub file: FileRef,
    #[serde(flatten)]
    pub extra: RawFields,
}

/// A file by uploaded id, or inline as base64 data with a name.
#[derive(Clone, Serialize)]
pub struct FileRef {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_data: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    #[serde(flatten)]
    pub extra: RawFields,
}

/// A call the assistant made: `{"id", "type": "function", "function": {...}}`.
#[derive(Clone, Serialize)]
#[serde(tag = "type", rename = "function")]
pub struct ToolCall {
    pub id: String,
    pub function: FunctionCall,
    #[serde(flatten)]
    pub extra: RawFields,
}

/// The function of a [`ToolCall`]; `arguments` is JSON text as the model wrote it.
#[derive(Clone, Serialize)]
pub struct FunctionCall {
    pub name: String,
    pub arguments: String,
    #[serde(flatten)]
    pub extra: RawFields,
}

from_obj!(TextPart, "a text part object", tag: "text", |o| TextPart {
    text: o.req("text")?,
    extra: o.rest(),
});
from_obj!(RefusalPart, "a refusal part object", tag: "refusal", |o| RefusalPart {
    refusal: o.req("refusal")?,
    extra: o.rest(),
});
from_obj!(ImageUrlPart, "an image_url part object", tag: "image_url", |o| ImageUrlPart {
    image_url: o.req("image_url")?,
    extra: o.rest(),
});
from_obj!(ImageUrl, "an image_url object", |o| ImageUrl {
    url: o.req("url")?,
    detail: o.opt("detail")?,
    extra: o.rest(),
});
from_obj!(InputAudioPart, "an input_audio part object", tag: "input_audio", |o| InputAudioPart {
    input_audio: o.req("input_audio")?,
    extra: o.rest(),
});
from_obj!(InputAudio, "an input_audio object", |o| InputAudio {
    data: o.req("data")?,
    format: o.req("format")?,
    extra: o.rest(),
});
from_obj!(FilePart, "a file part object", tag: "file", |o| FilePart {
    file: o.req("file")?,
    extra: o.rest(),
});
from_obj!(FileRef, "a file object", |o| FileRef {
    file_id: o.opt("file_id")?,
    file_data: o.opt("file_data")?,
    filename: o.opt("filename")?,
    extra: o.rest(),
});
from_obj!(ToolCall, "a tool call object", tag: "function", |o| ToolCall {
    id: o.req("id")?,
    function: o.req("function")?,
    extra: o.rest(),
});
from_obj!(FunctionCall, "a function call object", |o| FunctionCall {
    name: o.req("name")?,
    arguments: o.req("arguments")?,
    extra: o.rest(),
});

deserialize_from_obj!(
    Message,
    UserPart,
    AssistantPart,
    TextPart,
    RefusalPart,
    ImageUrlPart,
    ImageUrl,
    InputAudioPart,
    InputAudio,
    FilePart,
    FileRef,
    ToolCall,
    FunctionCall,
);

redacted_debug!(TextPart, |s, d| d.field("extra", &s.extra));
redacted_debug!(RefusalPart, |s, d| d.field("extra", &s.extra));
redacted_debug!(ImageUrlPart, |s, d| d.field("image_url", &s.image_url));
redacted_debug!(ImageUrl, |s, d| d
    .field("data_url", &s.url.starts_with("data:"))
    .field("detail", &s.detail));
redacted_debug!(InputAudioPart, |s, d| d
    .field("input_audio", &s.input_audio));
redacted_debug!(InputAudio, |s, d| d.field("format", &s.format));
redacted_debug!(FilePart, |s, d| d.field("file", &s.file));
redacted_debug!(FileRef, |s, d| d
    .field("file_id", &s.file_id)
    .field("file_data", &s.file_data.is_some()));
redacted_debug!(ToolCall, |s, d| d
    .field("id", &s.id)
    .field("function", &s.function));
redacted_debug!(FunctionCall, |s, d| d.field("name", &s.name));
