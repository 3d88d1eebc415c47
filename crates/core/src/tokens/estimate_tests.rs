//! Tests of [`estimate`]: exact counts on small inputs, what each part adds, the output
//! reservation rules, the extrapolation's error on long texts, and a pseudo-random search for
//! panics and non-monotone estimates.

use serde_json::{Value, json};

use super::*;
use crate::pipeline::parse::parse;
use crate::provider::Operation;

fn req(op: Operation, body: &Value) -> ApiRequest {
    parse(op, &serde_json::to_vec(body).unwrap()).unwrap()
}

fn chat(messages: Value) -> ApiRequest {
    req(
        Operation::Chat,
        &json!({"model": "m", "messages": messages}),
    )
}

fn prompt(r: &ApiRequest) -> u64 {
    estimate(r, 0).prompt
}

fn user(content: Value) -> Value {
    json!([{"role": "user", "content": content}])
}

#[test]
fn small_chat_is_exact() {
    let r = chat(json!([
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Hello there, how are you?"},
    ]));
    let expected = count_text("You are terse.") + count_text("Hello there, how are you?");
    assert_eq!(prompt(&r), expected + 2 * PER_MESSAGE);
}

#[test]
fn each_part_kind_contributes() {
    let base = prompt(&chat(user(json!([{"type": "text", "text": "Look"}]))));
    assert_eq!(base, count_text("Look") + PER_MESSAGE);
    let with =
        |part: Value| prompt(&chat(user(json!([{"type": "text", "text": "Look"}, part])))) - base;
    assert_eq!(
        with(json!({"type": "image_url", "image_url": {"url": "https://x/y.png"}})),
        PER_IMAGE
    );
    assert_eq!(
        with(json!({"type": "image_url", "image_url": {"url": "data:,", "detail": "low"}})),
        PER_IMAGE_LOW
    );
    assert_eq!(
        with(json!({"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}})),
        PER_AUDIO
    );
    assert_eq!(
        with(json!({"type": "file", "file": {"file_id": "f"}})),
        PER_DOCUMENT
    );
    assert_eq!(
        with(json!({"type": "text", "text": "and this"})),
        count_text("and this")
    );
    assert!(with(json!({"type": "future_part", "payload": "x"})) > 0);

    let turns = |extra: Value| {
        let mut messages = vec![json!({"role": "user", "content": "Weather?"})];
        messages.push(extra);
        prompt(&chat(Value::Array(messages)))
    };
    let user_only = prompt(&chat(json!([{"role": "user", "content": "Weather?"}])));
    let call = turns(json!({"role": "assistant", "content": null, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]}));
    assert_eq!(
        call - user_only,
        PER_MESSAGE + count_text("get_weather") + count_text("{\"city\":\"Paris\"}")
    );
    let result = turns(json!({"role": "tool", "tool_call_id": "c1", "content": "18C, light rain"}));
    assert_eq!(
        result - user_only,
        PER_MESSAGE + count_text("18C, light rain")
    );
    let refusal =
        turns(json!({"role": "assistant", "content": [{"type": "refusal", "refusal": "No."}]}));
    assert_eq!(refusal - user_only, PER_MESSAGE + count_text("No."));
    let reasoning =
        turns(json!({"role": "assistant", "content": "Ok", "reasoning_content": "Think"}));
    assert_eq!(
        reasoning - user_only,
        PER_MESSAGE + count_text("Ok") + count_text("Think")
    );

    let schema = r#"{"type":"object","properties":{"city":{"type":"string"}}}"#;
    let tools = req(
        Operation::Chat,
        &json!({"model": "m", "messages": [{"role": "user", "content": "Weather?"}],
            "tools": [{"type": "function", "function": {"name": "get_weather",
                "description": "Current weather", "parameters": serde_json::from_str::<Value>(schema).unwrap()}}]}),
    );
    assert_eq!(
        prompt(&tools) - user_only,
        count_text("get_weather") + count_text("Current weather") + count_text(schema)
    );
}

#[test]
fn malformed_messages_count_as_json_text() {
    let r = req(
        Operation::Chat,
        &json!({"model": "m", "messages": [{"role": "oracle", "content": "hi"}]}),
    );
    assert_eq!(
        prompt(&r),
        count_text(r#"[{"role":"oracle","content":"hi"}]"#)
    );
}

#[test]
fn completion_and_embedding_inputs() {
    let comp = |p: Value| {
        prompt(&req(
            Operation::Completion,
            &json!({"model": "m", "prompt": p}),
        ))
    };
    let emb = |i: Value| {
        prompt(&req(
            Operation::Embedding,
            &json!({"model": "m", "input": i}),
        ))
    };
    assert_eq!(comp(json!("Say hello")), count_text("Say hello"));
    assert_eq!(
        comp(json!(["Say hello", "and goodbye"])),
        count_text("Say hello") + count_text("and goodbye")
    );
    assert_eq!(comp(json!([1, 2, 3])), 3);
    assert_eq!(
        emb(json!("escaped \"quote\"")),
        count_text("escaped \"quote\"")
    );
    assert_eq!(emb(json!([[1, 2], [3], []])), 3);
    assert_eq!(emb(json!(["a b", [7, 8]])), count_text("a b") + 2);
    // Shapes the pipeline forwards as is but that are not inputs count as their JSON text.
    assert_eq!(emb(json!({"text": "x"})), count_text(r#"{"text":"x"}"#));
    assert_eq!(emb(json!(5)), count_text("5"));
    assert_eq!(emb(json!([[["deep"]]])), count_text(r#"[[["deep"]]]"#));
}

#[test]
fn output_reservation_rules() {
    let chat = |extra: Value| {
        let mut body = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
        if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
            b.extend(e);
        }
        estimate(&req(Operation::Chat, &body), 500).output
    };
    assert_eq!(chat(json!({})), 500);
    assert_eq!(chat(json!({"max_tokens": 100})), 100);
    assert_eq!(
        chat(json!({"max_tokens": 100, "max_completion_tokens": 40})),
        40
    );
    assert_eq!(chat(json!({"max_tokens": 100, "n": 3})), 300);
    assert_eq!(chat(json!({"n": 2})), 1_000);
    assert_eq!(chat(json!({"n": 0})), 500);
    assert_eq!(chat(json!({"max_tokens": u64::MAX, "n": 2})), u64::MAX);

    let comp = |extra: Value| {
        let mut body = json!({"model": "m", "prompt": "hi"});
        if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
            b.extend(e);
        }
        estimate(&req(Operation::Completion, &body), 16).output
    };
    assert_eq!(comp(json!({})), 16);
    assert_eq!(comp(json!({"max_tokens": 10, "n": 2})), 20);
    assert_eq!(comp(json!({"max_tokens": 10, "n": 2, "best_of": 5})), 50);

    let emb = estimate(
        &req(Operation::Embedding, &json!({"model": "m", "input": "hi"})),
        500,
    );
    assert_eq!(
        emb,
        Estimate {
            prompt: 1,
            output: 0
        }
    );
    assert_eq!(emb.total(), 1);

    let body = json!({"model": "m", "max_tokens": 256, "system": "Be brief.",
        "messages": [{"role": "user", "content": "Hello"}]});
    let messages = estimate(&req(Operation::Messages, &body), 500);
    let count_body = json!({"model": "m", "system": "Be brief.",
        "messages": [{"role": "user", "content": "Hello"}]});
    let exact = estimate_messages(&serde_json::from_value(count_body.clone()).unwrap());
    assert_eq!(
        messages,
        Estimate {
            prompt: exact,
            output: 256
        }
    );
    let count = estimate(&req(Operation::CountTokens, &count_body), 500);
    assert_eq!(
        count,
        Estimate {
            prompt: exact,
            output: 0
        }
    );
}

/// A deterministic xorshift generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const WORDS: &[&str] = &[
    "the",
    "of",
    "and",
    "to",
    "in",
    "a",
    "is",
    "that",
    "for",
    "it",
    "as",
    "was",
    "with",
    "be",
    "by",
    "on",
    "not",
    "he",
    "this",
    "are",
    "or",
    "his",
    "from",
    "at",
    "which",
    "but",
    "have",
    "an",
    "had",
    "they",
    "you",
    "were",
    "their",
    "one",
    "all",
    "we",
    "can",
    "her",
    "has",
    "there",
    "been",
    "if",
    "more",
    "when",
    "will",
    "would",
    "who",
    "so",
    "no",
    "gateway",
    "request",
    "provider",
    "estimate",
    "mountain",
    "river",
    "government",
    "information",
    "development",
    "particularly",
    "understanding",
    "temperature",
    "Portcullis",
    "London",
];

const CODE: &[&str] = &[
    "fn ", "let ", "mut ", "self", ".", "(", ")", "{", "}", ";", "\n", "    ", "=", "->", "&",
    "match ", "Some", "None", "Ok", "Err", "?", "counter", "request", "_", "tokens", "u64", "::",
    "<", ">", ", ", "0", "1", "len", "iter", "map", "\"", "//", " ",
];

fn generate(rng: &mut Rng, pieces: &[&str], bytes: usize, sep: &str) -> String {
    let mut text = String::with_capacity(bytes + 32);
    while text.len() < bytes {
        text.push_str(pieces[rng.below(pieces.len())]);
        text.push_str(sep);
        if rng.below(12) == 0 {
            text.push_str(". ");
        }
    }
    text
}

#[test]
fn extrapolation_within_a_quarter_on_long_texts() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for (kind, text) in [
        ("prose", generate(&mut rng, WORDS, 400_000, " ")),
        ("code", generate(&mut rng, CODE, 400_000, "")),
    ] {
        let exact = count_text(&text);
        let r = req(
            Operation::Completion,
            &json!({"model": "m", "prompt": text}),
        );
        let estimated = prompt(&r);
        let error = (estimated as f64 - exact as f64) / exact as f64;
        eprintln!(
            "{kind}: exact {exact}, estimated {estimated}, error {:+.2}%",
            error * 100.0
        );
        assert!(error.abs() < 0.25, "{kind}: {estimated} vs {exact}");
    }
}

fn arbitrary_string(rng: &mut Rng) -> String {
    const ALPHABET: &[char] = &[
        'a',
        'Z',
        ' ',
        '\n',
        '\t',
        '"',
        '\\',
        '{',
        '0',
        'é',
        'ß',
        '日',
        '本',
        '🦀',
        '\u{0}',
        '\u{200b}',
        '\u{10ffff}',
        'ـ',
    ];
    let len = match rng.below(10) {
        0 => rng.below(EXACT_BUDGET * 2),
        _ => rng.below(64),
    };
    (0..len)
        .map(|_| ALPHABET[rng.below(ALPHABET.len())])
        .collect()
}

#[test]
fn arbitrary_strings_never_panic_and_messages_only_add() {
    let mut rng = Rng(42);
    for _ in 0..60 {
        let mut messages = Vec::new();
        let mut last = 0;
        for _ in 0..1 + rng.below(6) {
            let content = arbitrary_string(&mut rng);
            messages.push(match rng.below(4) {
                0 => json!({"role": "user", "content": content}),
                1 => json!({"role": "user", "content": [{"type": "text", "text": content},
                    {"type": "image_url", "image_url": {"url": "x"}}]}),
                2 => json!({"role": "assistant", "content": null, "tool_calls": [
                    {"id": "1", "type": "function", "function": {"name": "f", "arguments": content}}]}),
                _ => json!({"role": "tool", "tool_call_id": "1", "content": content}),
            });
            let now = prompt(&chat(Value::Array(messages.clone())));
            assert!(now > last, "{now} after {last}");
            last = now;
        }
        let texts: Vec<String> = (0..rng.below(4))
            .map(|_| arbitrary_string(&mut rng))
            .collect();
        estimate(
            &req(Operation::Embedding, &json!({"model": "m", "input": texts})),
            0,
        );
    }
    for budget in 0..12 {
        let mut c = Counter::bounded(budget);
        let mut last = 0;
        for _ in 0..20 {
            c.text(&arbitrary_string(&mut rng));
            assert!(c.total() >= last);
            last = c.total();
        }
    }
}
