//! The translation conformance matrix: every translated pair (OpenAI in, native provider out;
//! Anthropic in, other provider out) runs every case, as a JSON answer and as a stream, against
//! a wire mock of the provider (`portcullis_testkit::wire`), through the real gateway binary.
//! Each cell checks both ends: what the provider received (read back by the wire mock, which
//! also checks paths, headers, versions and credentials) and what the client got (text, tool
//! calls with id, name and complete arguments, stop reason, usage, error status and shape).
//!
//! The test renders the matrix and compares it with `docs/conformance.md`; a cell is marked only
//! when its check passed. After a change to the cases or pairs, regenerate the page with
//! `PORTCULLIS_BLESS=1 cargo test -p portcullis --test conformance`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use portcullis_testkit::wire::anthropic::AnthropicWire;
use portcullis_testkit::wire::bedrock::BedrockWire;
use portcullis_testkit::wire::cohere::CohereWire;
use portcullis_testkit::wire::gemini::GeminiWire;
use portcullis_testkit::wire::openai::OpenAiWire;
use portcullis_testkit::wire::{
    Canned, CannedCall, CannedError, CannedUsage, Finish, ProviderWire, Seen, SeenPart,
};
use portcullis_testkit::{GatewayProcess, MockUpstream, Recorded, Reply, TEST_KEY};
use serde_json::{Value, json};

/// The API the client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(
    dead_code,
    reason = "OpenAI-inbound pairs join as the native adapters land"
)]
enum Inbound {
    OpenAi,
    Anthropic,
}

/// One translated pair: a column group of the matrix.
struct Pair {
    title: &'static str,
    inbound: Inbound,
    /// Index into the gateway's providers (one mock per provider).
    provider: usize,
    /// Whether the provider's wire format carries tool call ids (else the gateway makes them).
    carries_ids: bool,
    /// Whether the provider reports cached prompt tokens.
    reports_cached: bool,
    /// Cases that do not apply to this provider: (case label, why).
    not_applicable: &'static [(&'static str, &'static str)],
}

/// A turn of a case's conversation, in neutral form.
#[derive(Clone)]
enum Turn {
    User(Vec<Part>),
    Assistant {
        text: Option<&'static str>,
        calls: Vec<CannedCall>,
    },
    ToolResults(Vec<(&'static str, &'static str)>),
}

#[derive(Clone)]
enum Part {
    Text(&'static str),
    /// A PNG as a data URL.
    Image(&'static str),
}

/// A case's request, in neutral form.
#[derive(Clone, Default)]
struct Request {
    system: Option<&'static str>,
    turns: Vec<Turn>,
    tools: Vec<&'static str>,
    json_mode: bool,
    stop: Vec<&'static str>,
}

/// What the upstream does.
#[derive(Clone)]
enum Script {
    Answer(Canned),
    Fail(CannedError),
}

/// One row of the matrix.
struct Case {
    label: &'static str,
    request: Request,
    script: Script,
    /// Inbound APIs the case does not apply to, with the reason (a footnote).
    not_for: Option<(Inbound, &'static str)>,
}

const MAX_TOKENS: u64 = 256;
const PNG: &str = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";

fn call(id: &str, name: &str, arguments: Value) -> CannedCall {
    CannedCall {
        id: id.into(),
        name: name.into(),
        arguments,
    }
}

fn text_answer(text: &str, finish: Finish) -> Script {
    Script::Answer(Canned {
        model: "conf-model".into(),
        text: Some(text.into()),
        tool_calls: Vec::new(),
        finish,
        usage: CannedUsage {
            input: 21,
            output: 7,
            cached: 0,
            reasoning: 0,
        },
    })
}

fn user(text: &'static str) -> Turn {
    Turn::User(vec![Part::Text(text)])
}

fn cases() -> Vec<Case> {
    let plain = Request {
        turns: vec![user("Say hello")],
        ..Request::default()
    };
    let weather = call(
        "call_weather_1",
        "get_weather",
        json!({"city": "Paris", "unit": "C"}),
    );
    let time = call("call_time_2", "get_time", json!({"tz": "Europe/Paris"}));
    let with_tools = Request {
        turns: vec![user("Weather and time in Paris?")],
        tools: vec!["get_weather", "get_time"],
        ..Request::default()
    };
    let tool_answer = |calls: Vec<CannedCall>| {
        Script::Answer(Canned {
            model: "conf-model".into(),
            text: None,
            tool_calls: calls,
            finish: Finish::ToolUse,
            usage: CannedUsage {
                input: 80,
                output: 25,
                cached: 0,
                reasoning: 0,
            },
        })
    };
    let mut cases = vec![
        Case {
            label: "plain text",
            request: plain.clone(),
            script: text_answer("Hello there, friend!", Finish::EndTurn),
            not_for: None,
        },
        Case {
            label: "system prompt",
            request: Request {
                system: Some("You answer in exactly three words."),
                ..plain.clone()
            },
            script: text_answer("Hello there, friend.", Finish::EndTurn),
            not_for: None,
        },
        Case {
            label: "multi-turn",
            request: Request {
                turns: vec![
                    user("My name is Ada."),
                    Turn::Assistant {
                        text: Some("Nice to meet you, Ada."),
                        calls: Vec::new(),
                    },
                    user("What is my name?"),
                ],
                ..Request::default()
            },
            script: text_answer("Your name is Ada.", Finish::EndTurn),
            not_for: None,
        },
        Case {
            label: "image input",
            request: Request {
                turns: vec![Turn::User(vec![
                    Part::Text("What colour is this pixel?"),
                    Part::Image(PNG),
                ])],
                ..Request::default()
            },
            script: text_answer("It is white.", Finish::EndTurn),
            not_for: None,
        },
        Case {
            label: "tool call (stop reason tool_use)",
            request: with_tools.clone(),
            script: tool_answer(vec![weather.clone()]),
            not_for: None,
        },
        Case {
            label: "parallel tool calls",
            request: with_tools.clone(),
            script: tool_answer(vec![weather.clone(), time.clone()]),
            not_for: None,
        },
        Case {
            label: "tool-result round trip",
            request: Request {
                turns: vec![
                    user("Weather and time in Paris?"),
                    Turn::Assistant {
                        text: None,
                        calls: vec![weather.clone(), time.clone()],
                    },
                    Turn::ToolResults(vec![
                        ("call_weather_1", "18C, sunny"),
                        ("call_time_2", "14:05"),
                    ]),
                ],
                ..with_tools.clone()
            },
            script: text_answer("It is 18C and sunny; the time is 14:05.", Finish::EndTurn),
            not_for: None,
        },
        Case {
            label: "JSON mode",
            request: Request {
                json_mode: true,
                ..plain.clone()
            },
            script: text_answer(r#"{"greeting":"hello"}"#, Finish::EndTurn),
            not_for: Some((
                Inbound::Anthropic,
                "Anthropic's Messages API has no JSON mode to translate.",
            )),
        },
        Case {
            label: "stop reason: end_turn",
            request: plain.clone(),
            script: text_answer("Done.", Finish::EndTurn),
            not_for: None,
        },
        Case {
            label: "stop reason: max_tokens",
            request: plain.clone(),
            script: text_answer("Hello there, this answer is cut", Finish::MaxTokens),
            not_for: None,
        },
        Case {
            label: "stop reason: stop_sequence",
            request: Request {
                stop: vec!["END"],
                ..plain.clone()
            },
            script: text_answer("Hello ", Finish::StopSequence),
            not_for: None,
        },
        Case {
            label: "stop reason: content_filter",
            request: plain.clone(),
            script: text_answer("I can", Finish::ContentFilter),
            not_for: None,
        },
        Case {
            label: "usage (cached prompt tokens)",
            request: plain.clone(),
            script: Script::Answer(Canned {
                model: "conf-model".into(),
                text: Some("Cached hello.".into()),
                tool_calls: Vec::new(),
                finish: Finish::EndTurn,
                usage: CannedUsage {
                    input: 1200,
                    output: 9,
                    cached: 1024,
                    reasoning: 0,
                },
            }),
            not_for: None,
        },
    ];
    for (label, error) in [
        ("upstream error: rate limited", CannedError::RateLimited),
        ("upstream error: overloaded", CannedError::Overloaded),
        (
            "upstream error: context too long",
            CannedError::ContextTooLong,
        ),
        (
            "upstream error: content filtered",
            CannedError::ContentFiltered,
        ),
        ("upstream error: auth", CannedError::Auth),
        ("upstream error: bad request", CannedError::BadRequest),
        ("upstream error: server error", CannedError::Server),
    ] {
        cases.push(Case {
            label,
            request: plain.clone(),
            script: Script::Fail(error),
            not_for: None,
        });
    }
    cases
}

// ---- requests in each inbound API ----

fn openai_body(req: &Request, model: &str, stream: bool) -> Value {
    let mut messages = Vec::new();
    if let Some(system) = req.system {
        messages.push(json!({"role": "system", "content": system}));
    }
    for turn in &req.turns {
        match turn {
            Turn::User(parts) => {
                let content = match parts.as_slice() {
                    [Part::Text(t)] => json!(t),
                    parts => Value::Array(
                        parts
                            .iter()
                            .map(|p| match p {
                                Part::Text(t) => json!({"type": "text", "text": t}),
                                Part::Image(url) => {
                                    json!({"type": "image_url", "image_url": {"url": url}})
                                }
                            })
                            .collect(),
                    ),
                };
                messages.push(json!({"role": "user", "content": content}));
            }
            Turn::Assistant { text, calls } => {
                let mut m = json!({"role": "assistant", "content": text});
                if !calls.is_empty() {
                    m["tool_calls"] = calls
                        .iter()
                        .map(|c| {
                            json!({"id": c.id, "type": "function", "function": {
                                "name": c.name, "arguments": c.arguments.to_string()}})
                        })
                        .collect();
                }
                messages.push(m);
            }
            Turn::ToolResults(results) => {
                for (id, content) in results {
                    messages.push(json!({"role": "tool", "tool_call_id": id, "content": content}));
                }
            }
        }
    }
    let mut body = json!({"model": model, "messages": messages, "max_tokens": MAX_TOKENS});
    if !req.tools.is_empty() {
        body["tools"] = req
            .tools
            .iter()
            .map(|name| {
                json!({"type": "function", "function": {"name": name, "description": "A tool",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}})
            })
            .collect();
    }
    if req.json_mode {
        body["response_format"] = json!({"type": "json_object"});
    }
    if !req.stop.is_empty() {
        body["stop"] = json!(req.stop);
    }
    if stream {
        body["stream"] = json!(true);
        body["stream_options"] = json!({"include_usage": true});
    }
    body
}

fn anthropic_body(req: &Request, model: &str, stream: bool) -> Value {
    let mut messages = Vec::new();
    for turn in &req.turns {
        match turn {
            Turn::User(parts) => {
                let content = match parts.as_slice() {
                    [Part::Text(t)] => json!(t),
                    parts => Value::Array(
                        parts
                            .iter()
                            .map(|p| match p {
                                Part::Text(t) => json!({"type": "text", "text": t}),
                                Part::Image(url) => {
                                    let (meta, data) = url.split_once(',').unwrap();
                                    let media = meta
                                        .trim_start_matches("data:")
                                        .trim_end_matches(";base64");
                                    json!({"type": "image", "source": {"type": "base64",
                                        "media_type": media, "data": data}})
                                }
                            })
                            .collect(),
                    ),
                };
                messages.push(json!({"role": "user", "content": content}));
            }
            Turn::Assistant { text, calls } => {
                let mut blocks = Vec::new();
                if let Some(t) = text {
                    blocks.push(json!({"type": "text", "text": t}));
                }
                for c in calls {
                    blocks.push(
                        json!({"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments}),
                    );
                }
                messages.push(json!({"role": "assistant", "content": blocks}));
            }
            Turn::ToolResults(results) => {
                let blocks: Vec<Value> = results
                    .iter()
                    .map(|(id, content)| {
                        json!({"type": "tool_result", "tool_use_id": id, "content": content})
                    })
                    .collect();
                messages.push(json!({"role": "user", "content": blocks}));
            }
        }
    }
    let mut body = json!({"model": model, "messages": messages, "max_tokens": MAX_TOKENS});
    if let Some(system) = req.system {
        body["system"] = json!(system);
    }
    if !req.tools.is_empty() {
        body["tools"] = req
            .tools
            .iter()
            .map(|name| {
                json!({"name": name, "description": "A tool",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}})
            })
            .collect();
    }
    if !req.stop.is_empty() {
        body["stop_sequences"] = json!(req.stop);
    }
    if stream {
        body["stream"] = json!(true);
    }
    body
}

// ---- checks of what the provider received ----

/// The parts the upstream should have seen, in order (roles are provider-specific for tool
/// results; text and images keep theirs).
fn expected_parts(req: &Request) -> Vec<(Option<&'static str>, SeenPart)> {
    let mut out = Vec::new();
    for turn in &req.turns {
        match turn {
            Turn::User(parts) => {
                for p in parts {
                    out.push((
                        Some("user"),
                        match p {
                            Part::Text(t) => SeenPart::Text((*t).into()),
                            Part::Image(url) => SeenPart::Image((*url).into()),
                        },
                    ));
                }
            }
            Turn::Assistant { text, calls } => {
                if let Some(t) = text {
                    out.push((Some("assistant"), SeenPart::Text((*t).into())));
                }
                for c in calls {
                    out.push((
                        Some("assistant"),
                        SeenPart::ToolCall {
                            id: c.id.clone(),
                            name: c.name.clone(),
                            arguments: c.arguments.clone(),
                        },
                    ));
                }
            }
            Turn::ToolResults(results) => {
                for (id, content) in results {
                    out.push((
                        None,
                        SeenPart::ToolResult {
                            id: (*id).into(),
                            content: (*content).into(),
                        },
                    ));
                }
            }
        }
    }
    out
}

fn part_matches(expected: &SeenPart, seen: &SeenPart) -> bool {
    match (expected, seen) {
        (SeenPart::Text(a), SeenPart::Text(b)) | (SeenPart::Image(a), SeenPart::Image(b)) => a == b,
        (
            SeenPart::ToolCall {
                id,
                name,
                arguments,
            },
            SeenPart::ToolCall {
                id: sid,
                name: sname,
                arguments: sargs,
            },
        ) => (sid.is_empty() || sid == id) && name == sname && arguments == sargs,
        (
            SeenPart::ToolResult { id, content },
            SeenPart::ToolResult {
                id: sid,
                content: scontent,
            },
        ) => (sid.is_empty() || sid == id) && scontent.contains(content.as_str()),
        _ => false,
    }
}

fn check_seen(case: &Case, inbound: Inbound, stream: bool, seen: &Seen) -> Result<(), String> {
    let req = &case.request;
    let system: Vec<&str> = req.system.into_iter().collect();
    // JSON mode may be an instruction appended to the system prompt (providers without a JSON
    // mode): the case's own system text must come first.
    if req.json_mode {
        if !seen.json_mode {
            return Err("JSON mode did not reach the upstream".into());
        }
    } else if seen.system.iter().map(String::as_str).collect::<Vec<_>>() != system {
        return Err(format!(
            "system: expected {system:?}, saw {:?}",
            seen.system
        ));
    }
    if seen.stream != stream {
        return Err(format!(
            "stream flag: expected {stream}, saw {}",
            seen.stream
        ));
    }
    let flat: Vec<(&str, &SeenPart)> = seen
        .messages
        .iter()
        .flat_map(|m| m.parts.iter().map(move |p| (m.role.as_str(), p)))
        .filter(|(_, p)| !matches!(p, SeenPart::Text(t) if t.is_empty()))
        .collect();
    let expected = expected_parts(req);
    if flat.len() != expected.len() {
        return Err(format!(
            "messages: expected {} parts, saw {} ({:?})",
            expected.len(),
            flat.len(),
            seen.messages
        ));
    }
    for ((role, part), (exp_role, exp)) in flat.iter().zip(&expected) {
        if !part_matches(exp, part) || exp_role.is_some_and(|r| r != *role) {
            return Err(format!(
                "message part: expected {exp_role:?} {exp:?}, saw {role} {part:?}"
            ));
        }
    }
    let tools: Vec<&str> = seen.tools.iter().map(String::as_str).collect();
    if tools != req.tools {
        return Err(format!("tools: expected {:?}, saw {tools:?}", req.tools));
    }
    if seen.stop.iter().map(String::as_str).collect::<Vec<_>>() != req.stop {
        return Err(format!(
            "stop: expected {:?}, saw {:?}",
            req.stop, seen.stop
        ));
    }
    if seen.max_tokens != Some(MAX_TOKENS) {
        return Err(format!("max_tokens: saw {:?}", seen.max_tokens));
    }
    let _ = inbound;
    Ok(())
}

// ---- checks of what the client got ----

/// The client's view of an answer, whichever API it speaks.
#[derive(Debug, Default)]
struct Answer {
    text: String,
    /// (id, name, arguments)
    calls: Vec<(String, String, Value)>,
    stop: String,
    input: u64,
    output: u64,
    cached: u64,
}

fn openai_answer(body: &Value) -> Result<Answer, String> {
    let choice = &body["choices"][0];
    let message = &choice["message"];
    let mut calls = Vec::new();
    for c in message["tool_calls"].as_array().into_iter().flatten() {
        let args = c["function"]["arguments"]
            .as_str()
            .ok_or("arguments not a string")?;
        calls.push((
            c["id"].as_str().unwrap_or_default().to_owned(),
            c["function"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            serde_json::from_str(args).map_err(|_| format!("arguments not JSON: {args}"))?,
        ));
    }
    Ok(Answer {
        text: message["content"].as_str().unwrap_or_default().to_owned(),
        calls,
        stop: choice["finish_reason"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        input: body["usage"]["prompt_tokens"].as_u64().unwrap_or(0),
        output: body["usage"]["completion_tokens"].as_u64().unwrap_or(0),
        cached: body["usage"]["prompt_tokens_details"]["cached_tokens"]
            .as_u64()
            .unwrap_or(0),
    })
}

fn openai_stream_answer(body: &str) -> Result<Answer, String> {
    let data = common::sse_data(body);
    if data.last().map(String::as_str) != Some("[DONE]") {
        return Err("the stream did not end with [DONE]".into());
    }
    let mut answer = Answer::default();
    let mut calls: BTreeMap<u64, (String, String, String)> = BTreeMap::new();
    let mut usage_chunks = 0;
    for d in &data[..data.len() - 1] {
        let chunk: Value = serde_json::from_str(d).map_err(|_| format!("not JSON: {d}"))?;
        if chunk.get("error").is_some() {
            return Err(format!("error event: {d}"));
        }
        if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
            usage_chunks += 1;
            answer.input = usage["prompt_tokens"].as_u64().unwrap_or(0);
            answer.output = usage["completion_tokens"].as_u64().unwrap_or(0);
            answer.cached = usage["prompt_tokens_details"]["cached_tokens"]
                .as_u64()
                .unwrap_or(0);
        }
        for choice in chunk["choices"].as_array().into_iter().flatten() {
            let delta = &choice["delta"];
            answer
                .text
                .push_str(delta["content"].as_str().unwrap_or_default());
            for tc in delta["tool_calls"].as_array().into_iter().flatten() {
                let index = tc["index"]
                    .as_u64()
                    .ok_or("tool call delta without index")?;
                let entry = calls.entry(index).or_default();
                if let Some(id) = tc["id"].as_str() {
                    entry.0 = id.to_owned();
                }
                if let Some(name) = tc["function"]["name"].as_str() {
                    entry.1.push_str(name);
                }
                entry
                    .2
                    .push_str(tc["function"]["arguments"].as_str().unwrap_or_default());
            }
            if let Some(f) = choice["finish_reason"].as_str() {
                answer.stop = f.to_owned();
            }
        }
    }
    if usage_chunks != 1 {
        return Err(format!(
            "{usage_chunks} usage chunks (include_usage asked for one)"
        ));
    }
    for (_, (id, name, args)) in calls {
        let args =
            serde_json::from_str(&args).map_err(|_| format!("arguments not JSON: {args}"))?;
        answer.calls.push((id, name, args));
    }
    Ok(answer)
}

fn anthropic_answer(body: &Value) -> Result<Answer, String> {
    if body["type"] != "message" {
        return Err(format!("not a message: {body}"));
    }
    let mut answer = Answer::default();
    for block in body["content"].as_array().into_iter().flatten() {
        match block["type"].as_str() {
            Some("text") => answer
                .text
                .push_str(block["text"].as_str().unwrap_or_default()),
            Some("tool_use") => answer.calls.push((
                block["id"].as_str().unwrap_or_default().to_owned(),
                block["name"].as_str().unwrap_or_default().to_owned(),
                block["input"].clone(),
            )),
            _ => {}
        }
    }
    answer.stop = body["stop_reason"].as_str().unwrap_or_default().to_owned();
    let usage = &body["usage"];
    answer.cached = usage["cache_read_input_tokens"].as_u64().unwrap_or(0);
    answer.input = usage["input_tokens"].as_u64().unwrap_or(0) + answer.cached;
    answer.output = usage["output_tokens"].as_u64().unwrap_or(0);
    Ok(answer)
}

/// Assembles an Anthropic event stream as the SDKs do, checking the event grammar.
fn anthropic_stream_answer(body: &str) -> Result<Answer, String> {
    let mut events = Vec::new();
    for raw in body.split("\n\n").filter(|e| !e.trim().is_empty()) {
        let mut name = None;
        let mut data = None;
        for line in raw.lines() {
            if let Some(n) = line.strip_prefix("event: ") {
                name = Some(n.to_owned());
            } else if let Some(d) = line.strip_prefix("data: ") {
                data = Some(d.to_owned());
            }
        }
        let (name, data) = name
            .zip(data)
            .ok_or_else(|| format!("malformed event: {raw}"))?;
        let payload: Value =
            serde_json::from_str(&data).map_err(|_| format!("not JSON: {data}"))?;
        if payload["type"] != name.as_str() {
            return Err(format!("event {name} carries type {}", payload["type"]));
        }
        events.push((name, payload));
    }
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    if names.first() != Some(&"message_start") || names.last() != Some(&"message_stop") {
        return Err(format!("bad event order: {names:?}"));
    }
    let mut answer = Answer::default();
    let mut open: Option<u64> = None;
    let mut blocks: BTreeMap<u64, (String, String, String, String)> = BTreeMap::new();
    for (name, e) in &events {
        match name.as_str() {
            "content_block_start" => {
                let index = e["index"].as_u64().ok_or("block without index")?;
                if open.is_some() {
                    return Err("a block started before the previous one stopped".into());
                }
                open = Some(index);
                let b = &e["content_block"];
                blocks.insert(
                    index,
                    (
                        b["type"].as_str().unwrap_or_default().to_owned(),
                        b["id"].as_str().unwrap_or_default().to_owned(),
                        b["name"].as_str().unwrap_or_default().to_owned(),
                        String::new(),
                    ),
                );
            }
            "content_block_delta" => {
                let index = e["index"].as_u64().ok_or("delta without index")?;
                if open != Some(index) {
                    return Err("a delta for a block that is not open".into());
                }
                let block = blocks.get_mut(&index).ok_or("delta for an unknown block")?;
                let d = &e["delta"];
                match d["type"].as_str() {
                    Some("text_delta") => block.3.push_str(d["text"].as_str().unwrap_or_default()),
                    Some("input_json_delta") => {
                        block
                            .3
                            .push_str(d["partial_json"].as_str().unwrap_or_default());
                    }
                    _ => {}
                }
            }
            "content_block_stop" if open.take() != e["index"].as_u64() => {
                return Err("a stop for a block that is not open".into());
            }
            "message_delta" => {
                answer.stop = e["delta"]["stop_reason"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                let u = &e["usage"];
                answer.cached = u["cache_read_input_tokens"].as_u64().unwrap_or(0);
                answer.input = u["input_tokens"].as_u64().unwrap_or(0) + answer.cached;
                answer.output = u["output_tokens"].as_u64().unwrap_or(0);
            }
            "error" => return Err(format!("error event: {e}")),
            _ => {}
        }
    }
    for (_, (kind, id, name, content)) in blocks {
        match kind.as_str() {
            "text" => answer.text.push_str(&content),
            "tool_use" => {
                let input = if content.is_empty() {
                    json!({})
                } else {
                    serde_json::from_str(&content)
                        .map_err(|_| format!("input not JSON: {content}"))?
                };
                answer.calls.push((id, name, input));
            }
            _ => {}
        }
    }
    Ok(answer)
}

fn expected_stop(inbound: Inbound, finish: Finish) -> &'static str {
    match (inbound, finish) {
        (Inbound::OpenAi, Finish::EndTurn | Finish::StopSequence) => "stop",
        (Inbound::OpenAi, Finish::MaxTokens) => "length",
        (Inbound::OpenAi, Finish::ToolUse) => "tool_calls",
        (Inbound::OpenAi, Finish::ContentFilter) => "content_filter",
        // An OpenAI answer does not say which stop sequence matched (see the inbound
        // translation's notes), so a matched stop sequence reads as end_turn.
        (Inbound::Anthropic, Finish::EndTurn | Finish::StopSequence) => "end_turn",
        (Inbound::Anthropic, Finish::MaxTokens) => "max_tokens",
        (Inbound::Anthropic, Finish::ToolUse) => "tool_use",
        (Inbound::Anthropic, Finish::ContentFilter) => "refusal",
    }
}

fn check_answer(pair: &Pair, canned: &Canned, answer: &Answer) -> Result<(), String> {
    let want_text = canned.text.clone().unwrap_or_default();
    if answer.text != want_text {
        return Err(format!(
            "text: expected {want_text:?}, got {:?}",
            answer.text
        ));
    }
    if answer.calls.len() != canned.tool_calls.len() {
        return Err(format!(
            "tool calls: expected {}, got {:?}",
            canned.tool_calls.len(),
            answer.calls
        ));
    }
    let mut ids = std::collections::HashSet::new();
    for ((id, name, args), want) in answer.calls.iter().zip(&canned.tool_calls) {
        if id.is_empty() || !ids.insert(id.clone()) {
            return Err(format!(
                "tool call ids must be present and distinct: {:?}",
                answer.calls
            ));
        }
        if pair.carries_ids && *id != want.id {
            return Err(format!("tool call id: expected {}, got {id}", want.id));
        }
        if *name != want.name || *args != want.arguments {
            return Err(format!(
                "tool call: expected {} {}, got {name} {args}",
                want.name, want.arguments
            ));
        }
    }
    let stop = expected_stop(pair.inbound, canned.finish);
    if answer.stop != stop {
        return Err(format!("stop reason: expected {stop}, got {}", answer.stop));
    }
    let u = canned.usage;
    let cached = if pair.reports_cached { u.cached } else { 0 };
    if (answer.input, answer.output, answer.cached) != (u.input, u.output, cached) {
        return Err(format!(
            "usage: expected in {} out {} cached {cached}, got in {} out {} cached {}",
            u.input, u.output, answer.input, answer.output, answer.cached
        ));
    }
    Ok(())
}

fn expected_error(inbound: Inbound, error: CannedError) -> (u16, &'static str) {
    let (status, openai_code, anthropic_type) = match error {
        CannedError::RateLimited => (429, "upstream_rate_limited", "rate_limit_error"),
        CannedError::Overloaded => (503, "upstream_overloaded", "overloaded_error"),
        CannedError::ContextTooLong => (400, "context_length_exceeded", "invalid_request_error"),
        CannedError::ContentFiltered => (400, "content_filter", "invalid_request_error"),
        CannedError::Auth => (502, "upstream_auth_failed", "api_error"),
        CannedError::BadRequest => (400, "upstream_bad_request", "invalid_request_error"),
        CannedError::Server => (502, "upstream_error", "api_error"),
    };
    match inbound {
        Inbound::OpenAi => (status, openai_code),
        Inbound::Anthropic => (status, anthropic_type),
    }
}

// ---- the run ----

struct Harness {
    gateway: GatewayProcess,
    mocks: Vec<(MockUpstream, Arc<Mutex<Option<Script>>>)>,
    wires: Vec<Arc<dyn ProviderWire>>,
}

impl Harness {
    async fn start(wires: Vec<Arc<dyn ProviderWire>>) -> Self {
        let mut mocks = Vec::new();
        let mut providers = String::new();
        let mut models = String::new();
        for (i, wire) in wires.iter().enumerate() {
            let script: Arc<Mutex<Option<Script>>> = Arc::default();
            let (s, w) = (script.clone(), wire.clone());
            let mock = MockUpstream::start(move |r: &Recorded| {
                if let Some(reply) = w.auxiliary_reply(r) {
                    return reply;
                }
                match s.lock().unwrap().clone() {
                    Some(Script::Answer(canned)) => w.reply(&canned, asks_for_stream(r)),
                    Some(Script::Fail(e)) => w.error(e),
                    None => Reply::error(500, "no script"),
                }
            })
            .await
            .unwrap();
            let base = format!("http://{}", mock.addr);
            writeln!(providers, "  p{i}: {}", wire.provider_yaml(&base)).unwrap();
            writeln!(
                models,
                "  conf-{i}: {{ deployments: [{{ provider: p{i}, model: conf-target-model }}] }}"
            )
            .unwrap();
            mocks.push((mock, script));
        }
        let yaml = common::config(providers.trim_end(), models.trim_end());
        let gateway = GatewayProcess::start(common::BIN, &yaml).await.unwrap();
        Self {
            gateway,
            mocks,
            wires,
        }
    }

    async fn run(&self, pair: &Pair, case: &Case, stream: bool) -> Result<(), String> {
        let (mock, script) = &self.mocks[pair.provider];
        *script.lock().unwrap() = Some(case.script.clone());
        let before = mock.count();
        let model = format!("conf-{}", pair.provider);
        let (path, body) = match pair.inbound {
            Inbound::OpenAi => (
                "/v1/chat/completions",
                openai_body(&case.request, &model, stream),
            ),
            Inbound::Anthropic => (
                "/v1/messages",
                anthropic_body(&case.request, &model, stream),
            ),
        };
        let response = common::client()
            .post(self.gateway.url(path))
            .bearer_auth(TEST_KEY)
            .json(&body)
            .send()
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|e| format!("body: {e}"))?;
        let requests = mock.requests();
        // The API call is the last request: a token fetch (Vertex AI) comes before it.
        let recorded = requests[before..]
            .last()
            .ok_or("the upstream received nothing")?;
        let seen = self.wires[pair.provider].seen(recorded)?;
        check_seen(case, pair.inbound, stream, &seen)?;
        match &case.script {
            Script::Fail(error) => {
                let (want_status, want_code) = expected_error(pair.inbound, *error);
                if status != want_status {
                    return Err(format!(
                        "status: expected {want_status}, got {status}: {text}"
                    ));
                }
                let body: Value = serde_json::from_str(&text)
                    .map_err(|_| format!("error body not JSON: {text}"))?;
                let got = match pair.inbound {
                    Inbound::OpenAi => body["error"]["code"].as_str(),
                    Inbound::Anthropic => {
                        if body["type"] != "error" {
                            return Err(format!("not an Anthropic error: {text}"));
                        }
                        body["error"]["type"].as_str()
                    }
                };
                if got != Some(want_code) {
                    return Err(format!("error code: expected {want_code}, got {text}"));
                }
                Ok(())
            }
            Script::Answer(canned) => {
                if status != 200 {
                    return Err(format!("status {status}: {text}"));
                }
                let answer = match (pair.inbound, stream) {
                    (Inbound::OpenAi, false) => {
                        openai_answer(&serde_json::from_str(&text).map_err(|_| "not JSON")?)?
                    }
                    (Inbound::OpenAi, true) => openai_stream_answer(&text)?,
                    (Inbound::Anthropic, false) => {
                        anthropic_answer(&serde_json::from_str(&text).map_err(|_| "not JSON")?)?
                    }
                    (Inbound::Anthropic, true) => anthropic_stream_answer(&text)?,
                };
                check_answer(pair, canned, &answer)
            }
        }
    }
}

/// Whether the gateway asked the provider for a stream (each provider says it its own way:
/// a `stream` field, a streaming path, or the accept header).
fn asks_for_stream(r: &Recorded) -> bool {
    r.body["stream"] == true
        || r.path.ends_with("/converse-stream")
        || r.path.ends_with(":streamGenerateContent")
        || r.query.contains("alt=sse")
        || r.headers
            .get("accept")
            .is_some_and(|a| a.contains("event-stream"))
}

fn render(
    pairs: &[Pair],
    cases: &[Case],
    cells: &BTreeMap<(usize, usize, bool), &'static str>,
) -> String {
    let mut out = String::from(
        "# Translation conformance matrix\n\n\
         Generated by `crates/server/tests/conformance.rs`; do not edit by hand. Each case runs as a \
         JSON answer and as a stream through the real gateway binary against a wire mock of the \
         provider (`crates/testkit/src/wire/`). A cell is ✓ only when the test checked both ends and \
         they were right: what the provider received (path, headers, version, credentials — for \
         Bedrock the SigV4 signature — and the translated system prompt, messages, images, tools, \
         tool calls and results, stop sequences and `max_tokens`), and what the client got (text, \
         tool calls with id, name and complete arguments, stop reason, usage, or the error's \
         status and shape). Regenerate with `PORTCULLIS_BLESS=1 cargo test -p portcullis --test \
         conformance`.\n\nEach cell reads *JSON answer / stream*.\n\n",
    );
    out.push_str("| case |");
    for p in pairs {
        write!(out, " {} |", p.title).unwrap();
    }
    out.push_str("\n|---|");
    for _ in pairs {
        out.push_str(":---:|");
    }
    out.push('\n');
    let mut notes = Vec::new();
    for (ci, case) in cases.iter().enumerate() {
        write!(out, "| {} |", case.label).unwrap();
        for (pi, _) in pairs.iter().enumerate() {
            let cell = |stream| cells.get(&(ci, pi, stream)).copied().unwrap_or("?");
            write!(out, " {} / {} |", cell(false), cell(true)).unwrap();
        }
        out.push('\n');
        if let Some((_, why)) = case.not_for {
            notes.push(format!("- n/a in “{}”: {why}", case.label));
        }
        for pair in pairs {
            for (label, why) in pair.not_applicable {
                if *label == case.label {
                    notes.push(format!(
                        "- n/a in “{}” for {}: {why}",
                        case.label, pair.title
                    ));
                }
            }
        }
    }
    if !notes.is_empty() {
        out.push('\n');
        out.push_str(&notes.join("\n"));
        out.push('\n');
    }
    out.push_str(
        "\nStop sequences: an OpenAI answer does not say which stop sequence matched, so Anthropic \
         clients served by other providers see `end_turn` where Anthropic would say \
         `stop_sequence`. Usage: cached prompt tokens are checked where the provider reports them.\n",
    );
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn conformance_matrix() {
    // The providers, one mock each; pairs refer to them by index.
    let wires: Vec<Arc<dyn ProviderWire>> = vec![
        Arc::new(OpenAiWire),
        Arc::new(AnthropicWire::default()),
        Arc::new(BedrockWire::default()),
        Arc::new(CohereWire),
        Arc::new(GeminiWire::ai_studio()),
        Arc::new(GeminiWire::vertex()),
    ];
    let pair = |title, inbound, provider, not_applicable| Pair {
        title,
        inbound,
        provider,
        carries_ids: true,
        reports_cached: true,
        not_applicable,
    };
    const ANTHROPIC_REFUSAL: &[(&str, &str)] = &[(
        "upstream error: content filtered",
        "Anthropic reports a refusal as a successful answer with `stop_reason: refusal`, never \
         as an error: that is the row “stop reason: content_filter”.",
    )];
    const COHERE_BLOCKED: &[(&str, &str)] = &[(
        "stop reason: content_filter",
        "Cohere has no content-filter finish reason: it answers blocked output with an error \
         (HTTP 498), which is the row “upstream error: content filtered”.",
    )];
    let pairs = vec![
        pair("OpenAI → Anthropic", Inbound::OpenAi, 1, ANTHROPIC_REFUSAL),
        pair("OpenAI → Bedrock", Inbound::OpenAi, 2, &[]),
        pair("OpenAI → Cohere", Inbound::OpenAi, 3, COHERE_BLOCKED),
        pair("OpenAI → Gemini", Inbound::OpenAi, 4, &[]),
        Pair {
            // Vertex AI's API carries no tool call ids: the gateway makes them.
            carries_ids: false,
            ..pair("OpenAI → Vertex AI", Inbound::OpenAi, 5, &[])
        },
        pair("Anthropic → OpenAI-compatible", Inbound::Anthropic, 0, &[]),
        pair("Anthropic → Gemini", Inbound::Anthropic, 4, &[]),
        pair("Anthropic → Bedrock", Inbound::Anthropic, 2, &[]),
    ];
    let harness = Harness::start(wires).await;
    let cases = cases();
    let mut cells = BTreeMap::new();
    let mut failures = Vec::new();
    for (ci, case) in cases.iter().enumerate() {
        for (pi, pair) in pairs.iter().enumerate() {
            for stream in [false, true] {
                if case
                    .not_for
                    .is_some_and(|(inbound, _)| inbound == pair.inbound)
                    || pair.not_applicable.iter().any(|(l, _)| *l == case.label)
                {
                    cells.insert((ci, pi, stream), "n/a");
                    continue;
                }
                match harness.run(pair, case, stream).await {
                    Ok(()) => {
                        cells.insert((ci, pi, stream), "✓");
                    }
                    Err(e) => failures.push(format!(
                        "{} / {} / {}: {e}",
                        pair.title,
                        case.label,
                        if stream { "stream" } else { "JSON" }
                    )),
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} cells failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    let page = render(&pairs, &cases, &cells);
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/conformance.md");
    if std::env::var_os("PORTCULLIS_BLESS").is_some() {
        std::fs::write(path, &page).unwrap();
    }
    let on_disk = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        on_disk == page,
        "docs/conformance.md is out of date: regenerate it with PORTCULLIS_BLESS=1 cargo test -p portcullis --test conformance"
    );
}
