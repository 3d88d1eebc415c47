//! Fuzz target for `portcullis_core::json_scan`, the structural scan that reads `usage` from
//! forwarded bodies. On any input the three entry points must not panic. When serde_json
//! accepts the input as an object, the scan must accept it too, and the raw values it returns
//! must parse to what serde_json holds for those keys (serde_json keeps the last of duplicate
//! keys, as both scans do).

#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_core::json_scan;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let first = json_scan::top_level(data, ["usage", "choices"]);
    let last = json_scan::last_top_level(data, "usage");
    let _ = json_scan::usage(data);

    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let [usage, choices] = first.expect("top_level rejected a valid object");
    let last = last.expect("last_top_level rejected a valid object");
    // The scan compares keys as raw bytes, so a key spelled with a \u escape is invisible to
    // it, by design; only such an escape can spell "usage" or "choices" differently.
    if data.windows(2).any(|w| w == b"\\u") {
        return;
    }
    let parse = |raw: Option<&[u8]>| {
        raw.map(|raw| serde_json::from_slice::<Value>(raw).expect("a returned value is not JSON"))
    };
    assert_eq!(
        parse(last).as_ref(),
        map.get("usage"),
        "last_top_level: usage"
    );
    assert_eq!(parse(usage).as_ref(), map.get("usage"), "top_level: usage");
    assert_eq!(
        parse(choices).as_ref(),
        map.get("choices"),
        "top_level: choices"
    );
});
