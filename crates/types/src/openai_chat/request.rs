//! Request fields kept raw in [`ChatCompletionRequest::extra`], typed on demand.

use std::fmt;

use serde::de::{self, DeserializeOwned, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

use super::{FromObj, Message, Obj, Untyped};
use crate::openai::ChatCompletionRequest;
use crate::raw::RawFields;

impl ChatCompletionRequest {
    /// The messages, typed by role (parsed on demand: pass-through never needs it).
    pub fn messages_typed(&self) -> serde_json::Result<Vec<Message>> {
        serde_json::from_str(self.messages.get())
    }

    /// `tools`; `None` when absent or `null`.
    pub fn tools(&self) -> serde_json::Result<Option<Vec<Tool>>> {
        self.extra_typed("tools")
    }

    /// `tool_choice`; `None` when absent or `null`.
    pub fn tool_choice(&self) -> serde_json::Result<Option<ToolChoice>> {
        self.extra_typed("tool_choice")
    }

    /// `response_format`; `None` when absent or `null`.
    pub fn response_format(&self) -> serde_json::Result<Option<ResponseFormat>> {
        self.extra_typed("response_format")
    }

    /// `stop`; `None` when absent or `null`.
    pub fn stop(&self) -> serde_json::Result<Option<Stop>> {
        self.extra_typed("stop")
    }

    fn extra_typed<T: DeserializeOwned>(&self, key: &str) -> serde_json::Result<Option<T>> {
        match self.extra.get(key) {
            None => Ok(None),
            Some(raw) => serde_json::from_str(raw.get()),
        }
    }
}

/// A function the model may call: `{"type": "function", "function": {...}}`.
#[derive(Clone, Serialize)]
#[serde(tag = "type", rename = "function")]
pub struct Tool {
    pub function: FunctionDef,
    #[serde(flatten)]
    pub extra: RawFields,
}

/// The definition of a [`Tool`]'s function; `parameters` is a JSON Schema, kept as received.
#[derive(Clone, Serialize)]
pub struct FunctionDef {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Box<RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
    #[serde(flatten)]
    pub extra: RawFields,
}

/// `{"name": ...}`: the function a [`ToolChoice::Function`] forces.
#[derive(Debug, Clone, Serialize)]
pub struct NamedFunction {
    pub name: String,
    #[serde(flatten)]
    pub extra: RawFields,
}

/// `tool_choice`: a mode, one function, or a newer kind kept whole.
#[derive(Debug, Clone)]
pub enum ToolChoice {
    /// `"none"`: no tool call.
    None,
    /// `"auto"`: the model decides.
    Auto,
    /// `"required"`: at least one tool call.
    Required,
    /// `{"type": "function", "function": {"name": ...}}`.
    Function {
        function: NamedFunction,
        extra: RawFields,
    },
    /// An object of another `type` (`allowed_tools`, `custom`), kept as received.
    Other(Untyped),
}

impl Serialize for ToolChoice {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::None => s.serialize_str("none"),
            Self::Auto => s.serialize_str("auto"),
            Self::Required => s.serialize_str("required"),
            Self::Function { function, extra } => {
                let mut map = s.serialize_map(None)?;
                map.serialize_entry("type", "function")?;
                map.serialize_entry("function", function)?;
                for key in extra.keys() {
                    map.serialize_entry(key, &extra.get(key))?;
                }
                map.end()
            }
            Self::Other(raw) => raw.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for ToolChoice {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ToolChoice;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"none\", \"auto\", \"required\" or a tool choice object")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<ToolChoice, E> {
                match s {
                    "none" => Ok(ToolChoice::None),
                    "auto" => Ok(ToolChoice::Auto),
                    "required" => Ok(ToolChoice::Required),
                    other => Err(E::unknown_variant(other, &["none", "auto", "required"])),
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ToolChoice, A::Error> {
                let mut obj = Obj::read(map)?;
                if obj.peek_str::<A::Error>("type")? != "function" {
                    return Ok(ToolChoice::Other(obj.into_untyped()?));
                }
                obj.take_raw("type");
                Ok(ToolChoice::Function {
                    function: obj.req("function")?,
                    extra: obj.rest(),
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// `response_format`, by `type`.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResponseFormat {
    Text {
        #[serde(flatten)]
        extra: RawFields,
    },
    JsonObject {
        #[serde(flatten)]
        extra: RawFields,
    },
    JsonSchema {
        json_schema: JsonSchema,
        #[serde(flatten)]
        extra: RawFields,
    },
    /// A `type` this module does not know, kept as received.
    #[serde(untagged)]
    Other(Untyped),
}

/// The schema of a `json_schema` [`ResponseFormat`]. The reference makes `schema` optional;
/// it is kept as received.
#[derive(Clone, Serialize)]
pub struct JsonSchema {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema: Option<Box<RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
    #[serde(flatten)]
    pub extra: RawFields,
}

impl FromObj for ResponseFormat {
    const EXPECTING: &'static str = "a response_format object";

    fn from_obj<E: de::Error>(mut obj: Obj) -> Result<Self, E> {
        let kind = obj.peek_str::<E>("type")?;
        if !matches!(kind.as_str(), "text" | "json_object" | "json_schema") {
            return Ok(Self::Other(obj.into_untyped()?));
        }
        obj.take_raw("type");
        Ok(match kind.as_str() {
            "text" => Self::Text { extra: obj.rest() },
            "json_object" => Self::JsonObject { extra: obj.rest() },
            _ => Self::JsonSchema {
                json_schema: obj.req("json_schema")?,
                extra: obj.rest(),
            },
        })
    }
}

from_obj!(Tool, "a tool object", tag: "function", |o| Tool {
    function: o.req("function")?,
    extra: o.rest(),
});
from_obj!(FunctionDef, "a function definition object", |o| {
    FunctionDef {
        name: o.req("name")?,
        description: o.opt("description")?,
        parameters: o.take_raw("parameters"),
        strict: o.opt("strict")?,
        extra: o.rest(),
    }
});
from_obj!(NamedFunction, "a function name object", |o| NamedFunction {
    name: o.req("name")?,
    extra: o.rest(),
});
from_obj!(JsonSchema, "a json_schema object", |o| JsonSchema {
    name: o.req("name")?,
    description: o.opt("description")?,
    schema: o.take_raw("schema"),
    strict: o.opt("strict")?,
    extra: o.rest(),
});

deserialize_from_obj!(Tool, FunctionDef, NamedFunction, JsonSchema, ResponseFormat);

/// `stop`: one sequence or several.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    One(String),
    Many(Vec<String>),
}

impl Stop {
    /// The sequences, in order.
    pub fn sequences(&self) -> &[String] {
        match self {
            Self::One(one) => std::slice::from_ref(one),
            Self::Many(many) => many,
        }
    }
}

impl fmt::Debug for Stop {
    /// The count only: stop sequences may quote content.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stop")
            .field("count", &self.sequences().len())
            .finish_non_exhaustive()
    }
}

redacted_debug!(Tool, |s, d| d.field("function", &s.function));
redacted_debug!(FunctionDef, |s, d| d
    .field("name", &s.name)
    .field("parameters", &s.parameters.is_some())
    .field("strict", &s.strict));
redacted_debug!(JsonSchema, |s, d| d
    .field("name", &s.name)
    .field("strict", &s.strict));
