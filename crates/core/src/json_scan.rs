//! A fast, allocation-free scan of a JSON object's top-level fields, used by adapters and the
//! client stream to read `usage` from bodies and chunks they forward untouched. The gateway reads a few
//! fields (such as `usage`) of every upstream body and stream chunk it forwards untouched;
//! parsing whole bodies for that cost more than everything else the request path does. The
//! scan checks structure (balanced brackets, terminated strings) but does not validate scalars
//! or UTF-8: the bytes themselves are forwarded as they came, and the fields it returns are
//! then parsed properly by serde.

use portcullis_types::Usage;

/// The input is not a well-formed JSON object (as far as the scan can tell).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanError;

/// Returns the raw value of each of `keys` found at the top level of the object `json`
/// (`None` where absent). Keys are compared as raw bytes (escaped keys never match).
pub fn top_level<'a, const N: usize>(
    json: &'a [u8],
    keys: [&str; N],
) -> Result<[Option<&'a [u8]>; N], ScanError> {
    let mut found = [None; N];
    let mut i = skip_ws(json, 0);
    if json.get(i) != Some(&b'{') {
        return Err(ScanError);
    }
    i = skip_ws(json, i + 1);
    if json.get(i) == Some(&b'}') {
        return Ok(found);
    }
    loop {
        if json.get(i) != Some(&b'"') {
            return Err(ScanError);
        }
        let key_end = string_end(json, i)?;
        let key = &json[i + 1..key_end - 1];
        i = skip_ws(json, key_end);
        if json.get(i) != Some(&b':') {
            return Err(ScanError);
        }
        let start = skip_ws(json, i + 1);
        let end = value_end(json, start)?;
        if let Some(slot) = keys.iter().position(|k| k.as_bytes() == key) {
            found[slot] = Some(&json[start..end]);
        }
        i = skip_ws(json, end);
        match json.get(i) {
            Some(b',') => i = skip_ws(json, i + 1),
            Some(b'}') => return Ok(found),
            _ => return Err(ScanError),
        }
    }
}

/// Returns the raw value of the last top-level `key` of the object `json`, walking from the
/// end. Responses put `usage` after `choices`, so this reads only the tail of a body, however
/// long the completion. Like [`top_level`] it checks structure only along the way it walks.
pub fn last_top_level<'a>(json: &'a [u8], key: &str) -> Result<Option<&'a [u8]>, ScanError> {
    let open = skip_ws(json, 0);
    if json.get(open) != Some(&b'{') {
        return Err(ScanError);
    }
    let close = rskip_ws(json, json.len());
    if close <= open + 1 || json[close - 1] != b'}' {
        return Err(ScanError);
    }
    // `end` is just past the value being read; `open` marks the object's `{`.
    let mut end = rskip_ws(json, close - 1);
    if end == open + 1 {
        return Ok(None);
    }
    loop {
        let start = value_start(json, end, open)?;
        let colon = rskip_ws(json, start);
        if colon <= open + 1 || json[colon - 1] != b':' {
            return Err(ScanError);
        }
        let key_end = rskip_ws(json, colon - 1);
        if key_end <= open + 1 || json[key_end - 1] != b'"' {
            return Err(ScanError);
        }
        let key_start = string_start(json, key_end, open)?;
        if &json[key_start + 1..key_end - 1] == key.as_bytes() {
            return Ok(Some(&json[start..end]));
        }
        let before = rskip_ws(json, key_start);
        match before.checked_sub(1).map(|i| (i, json[i])) {
            Some((i, b',')) if i > open => end = rskip_ws(json, i),
            Some((i, b'{')) if i == open => return Ok(None),
            _ => return Err(ScanError),
        }
    }
}

/// Index just past the last non-whitespace byte before `end`.
fn rskip_ws(json: &[u8], mut end: usize) -> usize {
    while end > 0 && matches!(json[end - 1], b' ' | b'\t' | b'\n' | b'\r') {
        end -= 1;
    }
    end
}

/// `json[end - 1]` is a closing `"`: the index of its opening `"`, which is the previous quote
/// not escaped (preceded by an even number of backslashes). Never goes below `floor`.
fn string_start(json: &[u8], end: usize, floor: usize) -> Result<usize, ScanError> {
    let mut i = end - 1;
    loop {
        i = floor + memchr::memrchr(b'"', &json[floor..i]).ok_or(ScanError)?;
        let backslashes = json[floor..i]
            .iter()
            .rev()
            .take_while(|&&b| b == b'\\')
            .count();
        if backslashes % 2 == 0 {
            return Ok(i);
        }
    }
}

/// The index where the value ending just before `end` starts (never below `floor`).
fn value_start(json: &[u8], end: usize, floor: usize) -> Result<usize, ScanError> {
    match json.get(end.wrapping_sub(1)).ok_or(ScanError)? {
        b'"' => string_start(json, end, floor),
        b'}' | b']' => {
            let mut depth = 0usize;
            let mut i = end;
            while i > floor {
                match json[i - 1] {
                    b'"' => {
                        i = string_start(json, i, floor)?;
                        continue;
                    }
                    b'}' | b']' => depth += 1,
                    b'{' | b'[' => {
                        depth -= 1;
                        if depth == 0 {
                            return Ok(i - 1);
                        }
                    }
                    _ => {}
                }
                i -= 1;
            }
            Err(ScanError)
        }
        _ => {
            let mut i = end;
            while i > floor
                && !matches!(
                    json[i - 1],
                    b':' | b',' | b'[' | b'{' | b' ' | b'\t' | b'\n' | b'\r'
                )
            {
                i -= 1;
            }
            if i == end { Err(ScanError) } else { Ok(i) }
        }
    }
}

/// Whether a raw value is an empty array (`[]`, spaces allowed).
pub fn is_empty_array(value: &[u8]) -> bool {
    value.first() == Some(&b'[')
        && skip_ws(value, 1) == value.len() - 1
        && value.last() == Some(&b']')
}

fn skip_ws(json: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = json.get(i) {
        i += 1;
    }
    i
}

/// `json[start]` is `"`: the index just past the closing quote.
fn string_end(json: &[u8], start: usize) -> Result<usize, ScanError> {
    // A plain byte loop: JSON strings in responses are mostly short, where it beats the
    // set-up cost of a vectorised search (measured with callgrind on OpenAI-shaped bodies).
    let mut i = start + 1;
    while let Some(&b) = json.get(i) {
        match b {
            b'"' => return Ok(i + 1),
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
    Err(ScanError)
}

/// The index just past the value starting at `json[start]`.
fn value_end(json: &[u8], start: usize) -> Result<usize, ScanError> {
    match json.get(start).ok_or(ScanError)? {
        b'"' => string_end(json, start),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = start;
            while let Some(&b) = json.get(i) {
                match b {
                    b'"' => {
                        i = string_end(json, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Ok(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            Err(ScanError)
        }
        _ => {
            let len = json[start..]
                .iter()
                .position(|b| matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
                .unwrap_or(json.len() - start);
            if len == 0 {
                Err(ScanError)
            } else {
                Ok(start + len)
            }
        }
    }
}

/// The `usage` field of a response body or stream chunk, found without parsing the rest.
/// `Err` when the body is not a JSON object; `Ok(None)` when it reports no usage.
pub fn usage(json: &[u8]) -> Result<Option<Usage>, ScanError> {
    Ok(last_top_level(json, "usage")?.and_then(usage_object))
}

/// Reads the counts of an OpenAI `usage` object, with the cached prompt tokens and reasoning
/// tokens of its details. `None` when it is not an object or a count is not a non-negative
/// integer.
pub fn usage_object(raw: &[u8]) -> Option<Usage> {
    let [
        prompt,
        completion,
        total,
        prompt_details,
        completion_details,
    ] = top_level(
        raw,
        [
            "prompt_tokens",
            "completion_tokens",
            "total_tokens",
            "prompt_tokens_details",
            "completion_tokens_details",
        ],
    )
    .ok()?;
    let count = |v: Option<&[u8]>| -> Option<u64> {
        match v {
            None => Some(0),
            Some(digits) => std::str::from_utf8(digits).ok()?.parse().ok(),
        }
    };
    let (prompt, completion) = (count(prompt)?, count(completion)?);
    let total = match total {
        None => prompt.saturating_add(completion),
        t => count(t)?,
    };
    let detail = |object: Option<&[u8]>, field: &str| -> u64 {
        object
            .and_then(|o| top_level(o, [field]).ok())
            .and_then(|[v]| count(v))
            .unwrap_or(0)
    };
    Some(Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: total,
        cached_tokens: detail(prompt_details, "cached_tokens"),
        reasoning_tokens: detail(completion_details, "reasoning_tokens"),
    })
}

/// The counts of an Anthropic `usage` object (a message's, or a `message_delta`'s).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AnthropicCounts {
    /// All prompt tokens: `input_tokens` plus cache reads and writes (absent in a delta that
    /// does not repeat them).
    pub input: Option<u64>,
    pub cache_read: u64,
    pub output: u64,
}

/// Reads an Anthropic `usage` object. `None` when it is not an object or a count is not a
/// non-negative integer.
pub fn anthropic_usage_object(raw: &[u8]) -> Option<AnthropicCounts> {
    let [input, output, cache_read, cache_write] = top_level(
        raw,
        [
            "input_tokens",
            "output_tokens",
            "cache_read_input_tokens",
            "cache_creation_input_tokens",
        ],
    )
    .ok()?;
    let count = |v: Option<&[u8]>| -> Option<Option<u64>> {
        match v {
            None | Some(b"null") => Some(None),
            Some(digits) => std::str::from_utf8(digits).ok()?.parse().ok().map(Some),
        }
    };
    let cache_read = count(cache_read)?.unwrap_or(0);
    let input = count(input)?.map(|i| {
        i.saturating_add(cache_read)
            .saturating_add(count(cache_write).flatten().unwrap_or(0))
    });
    Some(AnthropicCounts {
        input,
        cache_read,
        output: count(output)?.unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_top_level_fields_only() {
        let json = br#" { "id" : "x\"usage\"", "choices":[{"usage":1,"s":"]}"}], "usage" : {"prompt_tokens":3} , "n":-1.5e3}"#;
        let [usage, choices, n, missing] =
            top_level(json, ["usage", "choices", "n", "nope"]).unwrap();
        assert_eq!(usage, Some(&br#"{"prompt_tokens":3}"#[..]));
        assert_eq!(choices, Some(&br#"[{"usage":1,"s":"]}"}]"#[..]));
        assert_eq!(n, Some(&b"-1.5e3"[..]));
        assert_eq!(missing, None);
        assert!(!is_empty_array(choices.unwrap()));
        assert!(is_empty_array(b"[ ]"));
        assert!(is_empty_array(b"[]"));
        assert!(!is_empty_array(b"[1]"));
    }

    #[test]
    fn agrees_with_serde_json_on_valid_objects() {
        let samples = [
            r#"{}"#,
            r#"{"usage":null}"#,
            r#"{"a":[1,[2,{"b":"\\"}]],"usage":{"total_tokens":7},"z":true}"#,
            r#"{"s":"\u00e9\n","usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}"#,
        ];
        for s in samples {
            let v: serde_json::Value = serde_json::from_str(s).unwrap();
            let [usage] = top_level(s.as_bytes(), ["usage"]).unwrap();
            let via_scan = usage.map(|u| serde_json::from_slice::<serde_json::Value>(u).unwrap());
            assert_eq!(via_scan.as_ref(), v.get("usage"), "{s}");
        }
    }

    #[test]
    fn usage_found_without_parsing_the_rest() {
        let body = br#"{"id":"x","choices":[{"message":{"content":"usage"}}],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}"#;
        assert_eq!(usage(body), Ok(Some(Usage::new(3, 4))));
        assert_eq!(usage(br#"{"choices":[],"usage":null}"#), Ok(None));
        assert_eq!(usage(br#"{"usage":"weird"}"#), Ok(None));
        assert_eq!(usage(br#"{"usage":{"prompt_tokens":-1}}"#), Ok(None));
        assert_eq!(usage(br#"{"usage":{"prompt_tokens":2.5}}"#), Ok(None));
        // Found by fuzzing: a missing total must not overflow.
        let huge = br#"{"usage":{"prompt_tokens":18446744073709551615,"completion_tokens":1}}"#;
        assert_eq!(
            usage(huge).map(|u| u.map(|u| u.total_tokens)),
            Ok(Some(u64::MAX))
        );
        let detailed = br#"{"usage":{"completion_tokens":20,"completion_tokens_details":{"reasoning_tokens":0},"prompt_tokens":1,"prompt_tokens_details":{"cached_tokens":0},"total_tokens":21}}"#;
        assert_eq!(usage(detailed), Ok(Some(Usage::new(1, 20))));
        let embeddings = br#"{"data":[],"usage":{"prompt_tokens":4,"total_tokens":4}}"#;
        assert_eq!(usage(embeddings), Ok(Some(Usage::new(4, 0))));
        let long = format!(
            r#"{{"s":"{}","usage":{{"prompt_tokens":1,"completion_tokens":1}}}}"#,
            "a\\\"b".repeat(40)
        );
        assert_eq!(usage(long.as_bytes()), Ok(Some(Usage::new(1, 1))));
        assert!(usage(b"not json").is_err());
    }

    /// Random JSON objects, serialised compactly or pretty, with tricky strings and `usage`
    /// keys at every depth: the backward walk must agree with serde_json.
    #[test]
    fn backward_walk_agrees_with_serde_json() {
        use serde_json::{Map, Value, json};
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let strings = [
            "usage",
            "a\"b",
            "\\",
            "end\\\"",
            "é\u{1F600}",
            "}]{[",
            ":,",
            "",
        ];
        fn value(next: &mut dyn FnMut(u64) -> u64, strings: &[&str], depth: u32) -> Value {
            match next(if depth > 3 { 5 } else { 7 }) {
                0 => Value::Null,
                1 => json!(next(1000)),
                2 => json!(-1.5e-3),
                3 => json!(next(2) == 0),
                4 => json!(strings[next(strings.len() as u64) as usize]),
                5 => Value::Array(
                    (0..next(4))
                        .map(|_| value(next, strings, depth + 1))
                        .collect(),
                ),
                _ => {
                    let mut m = Map::new();
                    for _ in 0..next(4) {
                        let k = strings[next(strings.len() as u64) as usize];
                        m.insert(k.to_owned(), value(next, strings, depth + 1));
                    }
                    Value::Object(m)
                }
            }
        }
        for round in 0..2000 {
            let mut obj = Map::new();
            for _ in 0..next(6) {
                let k = strings[next(strings.len() as u64) as usize];
                obj.insert(k.to_owned(), value(&mut next, &strings, 0));
            }
            let obj = Value::Object(obj);
            let text = if round % 2 == 0 {
                serde_json::to_string(&obj).unwrap()
            } else {
                serde_json::to_string_pretty(&obj).unwrap()
            };
            for key in ["usage", "a\"b", "missing"] {
                let found = last_top_level(text.as_bytes(), key).unwrap();
                let parsed = found.map(|raw| serde_json::from_slice::<Value>(raw).unwrap());
                // serde_json escapes the quote in the key, so a raw-byte match never sees it.
                let expected = if key.contains('"') {
                    None
                } else {
                    obj.get(key)
                };
                assert_eq!(parsed.as_ref(), expected, "{key} in {text}");
            }
        }
    }

    #[test]
    fn backward_walk_rejects_malformed_input() {
        for bad in [
            &b""[..],
            b"[]",
            b"{",
            b"}",
            br#"{"a":1"#,
            br#"{"a" 1}"#,
            br#"{"a":1 "b":2}"#,
            br#"{:1}"#,
            br#"{"a":}"#,
            br#"x{"a":1}"#,
            br#"{"a":[1,2}"#,
        ] {
            assert_eq!(
                last_top_level(bad, "zz"),
                Err(ScanError),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(last_top_level(b" { } ", "a"), Ok(None));
    }

    #[test]
    fn rejects_malformed_input() {
        for bad in [
            &b""[..],
            b"[]",
            b"{",
            br#"{"a":"unterminated}"#,
            br#"{"a":[1,2}"#,
            br#"{"a" 1}"#,
            br#"{"a":1 "b":2}"#,
            b"{\"a\":\"\\",
            br#"{"a":}"#,
        ] {
            assert_eq!(
                top_level(bad, ["a"]),
                Err(ScanError),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
