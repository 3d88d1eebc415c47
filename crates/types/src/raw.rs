//! Pass-through JSON: values the gateway does not act on are kept as the exact bytes the client
//! sent (`RawValue`), never re-encoded. That keeps them untouched (number formats, key order,
//! unusual but valid JSON) and makes forwarding them a copy instead of a parse and a print.

use std::fmt;

use serde::de::{DeserializeOwned, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

/// Object fields kept raw, in the order received.
#[derive(Clone, Default)]
pub struct RawFields(Vec<(String, Box<RawValue>)>);

impl RawFields {
    pub fn new() -> Self {
        Self::default()
    }

    /// The raw value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&RawValue> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| &**v)
    }

    /// The value of `key` typed as `T`; `None` when absent or of another type.
    pub fn get_as<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        serde_json::from_str(self.get(key)?.get()).ok()
    }

    /// Sets `key`, replacing an earlier value.
    pub fn insert(&mut self, key: impl Into<String>, value: Box<RawValue>) {
        let key = key.into();
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key, value)),
        }
    }

    /// Appends a field as it was read (a later duplicate wins when the object is read back).
    pub fn push(&mut self, key: String, value: Box<RawValue>) {
        self.0.push((key, value));
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_str())
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Extend<(String, Box<RawValue>)> for RawFields {
    /// Appends as read: linear in the number of fields, whatever a client sends.
    fn extend<I: IntoIterator<Item = (String, Box<RawValue>)>>(&mut self, iter: I) {
        self.0.extend(iter);
    }
}

impl PartialEq for RawFields {
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len()
            && self
                .0
                .iter()
                .zip(&other.0)
                .all(|((ka, va), (kb, vb))| ka == kb && va.get() == vb.get())
    }
}

impl fmt::Debug for RawFields {
    /// Field names only: values may be content.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.keys()).finish()
    }
}

impl Serialize for RawFields {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for RawFields {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawFields;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawFields, A::Error> {
                let mut fields = RawFields::new();
                while let Some(key) = map.next_key::<String>()? {
                    fields.push(key, map.next_value()?);
                }
                Ok(fields)
            }
        }
        d.deserialize_map(V)
    }
}

/// An object of a kind the gateway does not type (a newer content block, event, part or
/// option), kept exactly as received so that it passes through.
#[derive(Clone, Serialize)]
#[serde(transparent)]
pub struct Untyped(Box<RawValue>);

impl Untyped {
    pub fn new(raw: Box<RawValue>) -> Self {
        Self(raw)
    }

    /// The object's `type`, if it is a string.
    pub fn kind(&self) -> Option<String> {
        #[derive(Deserialize)]
        struct Tag {
            #[serde(rename = "type")]
            kind: String,
        }
        serde_json::from_str::<Tag>(self.0.get())
            .ok()
            .map(|t| t.kind)
    }

    pub fn get(&self) -> &RawValue {
        &self.0
    }
}

impl fmt::Debug for Untyped {
    /// The type only: the rest may be content.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Untyped").field(&self.kind()).finish()
    }
}

/// Whether a raw value is `null`.
pub fn is_null(v: &RawValue) -> bool {
    v.get().trim() == "null"
}

/// Whether a raw value is an array with at least one element.
pub fn is_non_empty_array(v: &RawValue) -> bool {
    let s = v.get().trim_start();
    s.starts_with('[') && !s[1..].trim_start().starts_with(']')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_bytes_and_order() -> Result<(), serde_json::Error> {
        let text = r#"{"b":1.50,"a":{"x":[1e2, true]},"c":"é"}"#;
        let fields: RawFields = serde_json::from_str(text)?;
        assert_eq!(fields.keys().collect::<Vec<_>>(), ["b", "a", "c"]);
        assert_eq!(fields.get("b").map(RawValue::get), Some("1.50"));
        assert_eq!(fields.get_as::<f64>("b"), Some(1.5));
        assert_eq!(fields.get_as::<String>("b"), None);
        assert_eq!(
            serde_json::to_string(&fields)?,
            r#"{"b":1.50,"a":{"x":[1e2, true]},"c":"é"}"#
        );
        assert_eq!(format!("{fields:?}"), r#"["b", "a", "c"]"#);
        Ok(())
    }

    #[test]
    fn array_and_null_checks() -> Result<(), serde_json::Error> {
        let raw = |s: &str| RawValue::from_string(s.to_owned());
        assert!(is_non_empty_array(&raw("[ {} ]")?));
        assert!(!is_non_empty_array(&raw("[ ]")?));
        assert!(!is_non_empty_array(&raw("{}")?));
        assert!(is_null(&raw("null")?));
        assert!(!is_null(&raw("0")?));
        Ok(())
    }
}
