//! Golden tests: an OpenAI body in, the whole Anthropic body out (and back for responses).

use portcullis_types::anthropic::MessagesResponse;
use portcullis_types::openai::ChatCompletionRequest;
use serde_json::{Value, json};

use super::{chat_request, chat_response};
use crate::translate::TranslateError;

fn translate(body: Value) -> Result<Value, TranslateError> {
    let req: ChatCompletionRequest = serde_json::from_value(body).unwrap();
    let out = chat_request(&req, "claude-up", 1000)?;
    Ok(serde_json::to_value(&out).unwrap())
}

fn user(text: &str) -> Value {
    json!({"role": "user", "content": text})
}

#[test]
fn requests_translate_to_golden_bodies() {
    let weather = json!({"type": "object", "properties": {"city": {"type": "string"}}});
    let cases: Vec<(&str, Value, Value)> = vec![
        (
            "plain text",
            json!({"model": "m", "messages": [user("hi")]}),
            json!({"model": "claude-up", "max_tokens": 1000,
                   "messages": [{"role": "user", "content": "hi"}]}),
        ),
        (
            "system and developer become system blocks in order",
            json!({"model": "m", "max_tokens": 50, "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "developer", "content": [{"type": "text", "text": "be kind"}]},
                user("hi"),
            ]}),
            json!({"model": "claude-up", "max_tokens": 50,
                   "system": [{"type": "text", "text": "be brief"}, {"type": "text", "text": "be kind"}],
                   "messages": [{"role": "user", "content": "hi"}]}),
        ),
        (
            "multi-turn, same-role runs merged, max_completion_tokens wins",
            json!({"model": "m", "max_tokens": 10, "max_completion_tokens": 20, "messages": [
                {"role": "system", "content": "sys"},
                user("a"), user("b"),
                {"role": "assistant", "content": "c"},
                user("d"),
            ]}),
            json!({"model": "claude-up", "max_tokens": 20, "system": "sys", "messages": [
                {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
                {"role": "assistant", "content": "c"},
                {"role": "user", "content": "d"},
            ]}),
        ),
        (
            "images: data URL and https URL",
            json!({"model": "m", "messages": [{"role": "user", "content": [
                {"type": "text", "text": "what?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "high"}},
            ]}]}),
            json!({"model": "claude-up", "max_tokens": 1000, "messages": [{"role": "user", "content": [
                {"type": "text", "text": "what?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
            ]}]}),
        ),
        (
            "parallel tool calls and their results",
            json!({"model": "m", "messages": [
                user("weather?"),
                {"role": "assistant", "content": "checking", "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "get", "arguments": "{\"city\":\"Oslo\"}"}},
                    {"id": "call_2", "type": "function", "function": {"name": "get", "arguments": ""}},
                ]},
                {"role": "tool", "tool_call_id": "call_1", "content": "rain"},
                {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "sun"}]},
            ]}),
            json!({"model": "claude-up", "max_tokens": 1000, "messages": [
                {"role": "user", "content": "weather?"},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "checking"},
                    {"type": "tool_use", "id": "call_1", "name": "get", "input": {"city": "Oslo"}},
                    {"type": "tool_use", "id": "call_2", "name": "get", "input": {}},
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "call_1", "content": "rain"},
                    {"type": "tool_result", "tool_use_id": "call_2", "content": "sun"},
                ]},
            ]}),
        ),
        (
            "stop string, sampling, user, stream",
            json!({"model": "m", "messages": [user("hi")], "stop": "END", "temperature": 0.5,
                   "top_p": 0.9, "user": "u-1", "stream": true}),
            json!({"model": "claude-up", "max_tokens": 1000, "messages": [{"role": "user", "content": "hi"}],
                   "stop_sequences": ["END"], "temperature": 0.5, "top_p": 0.9,
                   "metadata": {"user_id": "u-1"}, "stream": true}),
        ),
        (
            "stop array",
            json!({"model": "m", "messages": [user("hi")], "stop": ["a", "b"]}),
            json!({"model": "claude-up", "max_tokens": 1000, "messages": [{"role": "user", "content": "hi"}],
                   "stop_sequences": ["a", "b"]}),
        ),
        (
            "tools with and without parameters, parallel disabled",
            json!({"model": "m", "messages": [user("hi")], "parallel_tool_calls": false, "tools": [
                {"type": "function", "function": {"name": "get", "description": "weather", "parameters": weather}},
                {"type": "function", "function": {"name": "now"}},
            ]}),
            json!({"model": "claude-up", "max_tokens": 1000, "messages": [{"role": "user", "content": "hi"}],
                   "tools": [
                       {"name": "get", "description": "weather", "input_schema": weather},
                       {"name": "now", "input_schema": {"type": "object", "properties": {}}},
                   ],
                   "tool_choice": {"type": "auto", "disable_parallel_tool_use": true}}),
        ),
        (
            "reasoning_effort medium raises a small max_tokens above the budget",
            json!({"model": "m", "messages": [user("hi")], "reasoning_effort": "medium", "max_tokens": 100}),
            json!({"model": "claude-up", "max_tokens": 4196, "messages": [{"role": "user", "content": "hi"}],
                   "thinking": {"type": "enabled", "budget_tokens": 4096}}),
        ),
        (
            "reasoning_effort high keeps a large max_tokens",
            json!({"model": "m", "messages": [user("hi")], "reasoning_effort": "high", "max_tokens": 32000}),
            json!({"model": "claude-up", "max_tokens": 32000, "messages": [{"role": "user", "content": "hi"}],
                   "thinking": {"type": "enabled", "budget_tokens": 16384}}),
        ),
        (
            "json_object adds a system instruction",
            json!({"model": "m", "messages": [{"role": "system", "content": "sys"}, user("hi")],
                   "response_format": {"type": "json_object"}}),
            json!({"model": "claude-up", "max_tokens": 1000, "messages": [{"role": "user", "content": "hi"}],
                   "system": [{"type": "text", "text": "sys"}, {"type": "text", "text": super::JSON_OBJECT_INSTRUCTION}]}),
        ),
        (
            "json_schema adds a system instruction with the schema",
            json!({"model": "m", "messages": [user("hi")], "response_format": {"type": "json_schema",
                   "json_schema": {"name": "w", "schema": {"type": "object"}}}}),
            json!({"model": "claude-up", "max_tokens": 1000, "messages": [{"role": "user", "content": "hi"}],
                   "system": "Respond with a single valid JSON value only, with no other text before or \
                              after it. It must conform to the JSON schema named `w`:\n{\"type\":\"object\"}"}),
        ),
    ];
    for (name, input, expected) in cases {
        assert_eq!(translate(input).unwrap(), expected, "case: {name}");
    }
}

#[test]
fn tool_choice_maps_each_form() {
    let cases = [
        (json!("none"), json!({"type": "none"})),
        (json!("auto"), json!({"type": "auto"})),
        (json!("required"), json!({"type": "any"})),
        (
            json!({"type": "function", "function": {"name": "get"}}),
            json!({"type": "tool", "name": "get"}),
        ),
    ];
    for (choice, expected) in cases {
        let out = translate(json!({"model": "m", "messages": [user("hi")], "tool_choice": choice}));
        assert_eq!(out.unwrap()["tool_choice"], expected, "choice: {choice}");
    }
}

#[test]
fn untranslatable_requests_fail_without_content() {
    let secret = "s3cret-payload";
    let cases = [
        (
            json!([{"role": "assistant", "tool_calls": [{"id": "call_9", "type": "function",
                   "function": {"name": "f", "arguments": format!("{{{secret}")}}]}]),
            TranslateError::InvalidToolArguments {
                id: "call_9".into(),
            },
        ),
        (
            json!([{"role": "assistant", "tool_calls": [{"id": "call_8", "type": "function",
                   "function": {"name": "f", "arguments": format!("\"{secret}\"")}}]}]),
            TranslateError::InvalidToolArguments {
                id: "call_8".into(),
            },
        ),
        (
            json!([{"role": "user", "content": [{"type": "input_audio",
                   "input_audio": {"data": secret, "format": "wav"}}]}]),
            TranslateError::UnsupportedContentPart {
                kind: "input_audio".into(),
            },
        ),
        (
            json!([{"role": "user", "content": [{"type": "video", "data": secret}]}]),
            TranslateError::UnsupportedContentPart {
                kind: "video".into(),
            },
        ),
        (
            json!([{"role": "user", "content": [{"type": "image_url",
                   "image_url": {"url": format!("ftp://{secret}")}}]}]),
            TranslateError::InvalidImageUrl,
        ),
        (
            json!([{"role": "function", "name": "f", "content": secret}]),
            TranslateError::UnsupportedRole { role: "function" },
        ),
    ];
    for (messages, expected) in cases {
        let err = translate(json!({"model": "m", "messages": messages})).unwrap_err();
        assert!(!err.to_string().contains(secret), "{err}");
        assert_eq!(err, expected);
    }
    let err = translate(json!({"model": "m", "messages": [user("hi")], "reasoning_effort": "max"}));
    assert_eq!(
        err.unwrap_err(),
        TranslateError::UnsupportedValue {
            field: "reasoning_effort"
        }
    );
}

fn response(content: Value, stop_reason: &str, usage: Value) -> MessagesResponse {
    serde_json::from_value(json!({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-up",
        "content": content, "stop_reason": stop_reason, "stop_sequence": null, "usage": usage,
    }))
    .unwrap()
}

fn completion(message: Value, finish_reason: &str, usage: Value) -> Value {
    json!({
        "id": "msg_1", "object": "chat.completion", "created": 7, "model": "claude-up",
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish_reason}],
        "usage": usage,
    })
}

#[test]
fn responses_translate_to_golden_completions() {
    let small = json!({"input_tokens": 10, "output_tokens": 5});
    let small_out = json!({"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
                           "prompt_tokens_details": {"cached_tokens": 0}});
    let cases = [
        (
            "text blocks joined",
            response(
                json!([{"type": "text", "text": "Hel"}, {"type": "text", "text": "lo"}]),
                "end_turn",
                small.clone(),
            ),
            completion(
                json!({"role": "assistant", "content": "Hello", "refusal": null}),
                "stop",
                small_out.clone(),
            ),
        ),
        (
            "thinking and tool use",
            response(
                json!([
                    {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                    {"type": "tool_use", "id": "toolu_1", "name": "get", "input": {"city": "Oslo"}},
                ]),
                "tool_use",
                small.clone(),
            ),
            completion(
                json!({"role": "assistant", "content": null, "refusal": null,
                       "reasoning_content": "hmm",
                       "tool_calls": [{"id": "toolu_1", "type": "function",
                                       "function": {"name": "get", "arguments": "{\"city\":\"Oslo\"}"}}]}),
                "tool_calls",
                small_out.clone(),
            ),
        ),
        (
            "max_tokens with cache usage",
            response(
                json!([{"type": "text", "text": "cut"}]),
                "max_tokens",
                json!({"input_tokens": 10, "output_tokens": 5,
                       "cache_read_input_tokens": 100, "cache_creation_input_tokens": 20}),
            ),
            completion(
                json!({"role": "assistant", "content": "cut", "refusal": null}),
                "length",
                json!({"prompt_tokens": 130, "completion_tokens": 5, "total_tokens": 135,
                       "prompt_tokens_details": {"cached_tokens": 100}}),
            ),
        ),
    ];
    for (name, resp, expected) in cases {
        assert_eq!(chat_response(&resp, 7), expected, "case: {name}");
    }
}

#[test]
fn stop_reasons_map_to_finish_reasons() {
    for (stop, finish) in [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("pause_turn", "stop"),
        ("refusal", "content_filter"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
    ] {
        let resp = response(json!([]), stop, json!({}));
        let out = chat_response(&resp, 0);
        assert_eq!(out["choices"][0]["finish_reason"], finish, "stop: {stop}");
    }
}

#[test]
fn cache_control_is_kept_on_parts_messages_tools_and_system() {
    let eph = json!({"type": "ephemeral"});
    let hour = json!({"type": "ephemeral", "ttl": "1h"});
    let out = translate(json!({"model": "m", "messages": [
        {"role": "system", "content": "long rules", "cache_control": hour},
        {"role": "system", "content": [
            {"type": "text", "text": "a"},
            {"type": "text", "text": "b", "cache_control": eph},
            {"type": "text", "text": "c"},
        ]},
        {"role": "developer", "content": [{"type": "text", "text": "x"}, {"type": "text", "text": "y"}]},
        {"role": "user", "content": [
            {"type": "text", "text": "doc", "cache_control": eph},
            {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}, "cache_control": hour},
        ]},
        {"role": "assistant", "content": "ok", "cache_control": eph},
        {"role": "user", "content": "question", "cache_control": eph},
        {"role": "assistant", "tool_calls": [{"id": "call_1", "type": "function",
            "function": {"name": "get", "arguments": "{}"}}], "cache_control": eph},
        {"role": "tool", "tool_call_id": "call_1", "content": "result", "cache_control": hour},
        {"role": "tool", "tool_call_id": "call_2", "content": [
            {"type": "text", "text": "r1", "cache_control": eph}, {"type": "text", "text": ""}]},
        {"role": "user", "content": "", "cache_control": eph},
    ], "tools": [
        {"type": "function", "function": {"name": "get"}, "cache_control": eph},
        {"type": "function", "function": {"name": "put", "cache_control": hour}},
        {"type": "function", "function": {"name": "plain"}},
    ]}))
    .unwrap();
    assert_eq!(
        out["system"],
        json!([
            {"type": "text", "text": "long rules", "cache_control": hour},
            {"type": "text", "text": "a"},
            {"type": "text", "text": "b", "cache_control": eph},
            {"type": "text", "text": "c"},
            {"type": "text", "text": "xy"},
        ])
    );
    assert_eq!(
        out["messages"],
        json!([
            {"role": "user", "content": [
                {"type": "text", "text": "doc", "cache_control": eph},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"},
                 "cache_control": hour},
            ]},
            {"role": "assistant", "content": [{"type": "text", "text": "ok", "cache_control": eph}]},
            {"role": "user", "content": [{"type": "text", "text": "question", "cache_control": eph}]},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "call_1", "name": "get", "input": {}, "cache_control": eph},
            ]},
            // The empty user message adds nothing, so its cache_control has no block to go to.
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "result", "cache_control": hour},
                {"type": "tool_result", "tool_use_id": "call_2",
                 "content": [{"type": "text", "text": "r1", "cache_control": eph}]},
            ]},
        ])
    );
    let tools = out["tools"].as_array().unwrap();
    assert_eq!(tools[0]["cache_control"], eph);
    assert_eq!(tools[1]["cache_control"], hour);
    assert!(tools[2].get("cache_control").is_none());

    // A single system message with cache_control stays a block, not a string.
    let out = translate(json!({"model": "m", "messages": [
        {"role": "system", "content": "s", "cache_control": eph}, user("hi")]}))
    .unwrap();
    assert_eq!(
        out["system"],
        json!([{"type": "text", "text": "s", "cache_control": eph}])
    );
    assert_eq!(out["messages"][0]["content"], "hi");

    // Null is absent; anything not a cache_control object fails, naming the field.
    let out = translate(json!({"model": "m", "messages": [
        {"role": "user", "content": "hi", "cache_control": null}]}));
    assert_eq!(out.unwrap()["messages"][0]["content"], "hi");
    for bad in [json!("SECRET"), json!({"ttl": "SECRET"}), json!(["SECRET"])] {
        let err = translate(json!({"model": "m", "messages": [
            {"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": bad}]}]}))
        .unwrap_err();
        assert_eq!(
            err,
            TranslateError::InvalidField {
                field: "cache_control"
            }
        );
    }
}

#[test]
fn thinking_gives_way_to_forced_tools_tool_loops_and_sampling_limits() {
    let tools = json!([{"type": "function", "function": {"name": "get"}}]);
    let base = |extra: Value| {
        let mut body = json!({"model": "m", "messages": [user("hi")], "tools": tools,
            "reasoning_effort": "low", "max_tokens": 500});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        translate(body).unwrap()
    };

    // Thinking on: temperature dropped, top_p kept only within 0.95..=1, seed ignored.
    let out = base(json!({"temperature": 0.2, "top_p": 0.97, "seed": 42}));
    assert_eq!(
        out["thinking"],
        json!({"type": "enabled", "budget_tokens": 1024})
    );
    assert_eq!(out["max_tokens"], 1524);
    assert!(out.get("temperature").is_none(), "{out}");
    assert_eq!(out["top_p"], 0.97);
    assert!(out.get("seed").is_none(), "{out}");
    let out = base(json!({"top_p": 0.5, "tool_choice": "auto"}));
    assert!(out.get("top_p").is_none(), "{out}");
    assert_eq!(out["tool_choice"], json!({"type": "auto"}));
    assert!(out.get("thinking").is_some());
    let out = base(json!({"tool_choice": "none"}));
    assert!(out.get("thinking").is_some());

    // Forced tool use: thinking off, max_tokens and sampling as the caller set them.
    for choice in [
        json!("required"),
        json!({"type": "function", "function": {"name": "get"}}),
    ] {
        let out = base(json!({"tool_choice": choice, "temperature": 0.2}));
        assert!(out.get("thinking").is_none(), "{out}");
        assert_eq!(out["max_tokens"], 500);
        assert_eq!(out["temperature"], 0.2);
    }

    // A conversation that ends with tool results: thinking off.
    let loop_messages = json!([
        user("weather?"),
        {"role": "assistant", "tool_calls": [{"id": "call_1", "type": "function",
            "function": {"name": "get", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "rain"},
    ]);
    let out = base(json!({"messages": loop_messages}));
    assert!(out.get("thinking").is_none(), "{out}");
    // ... but a new user question after the loop may think again.
    let mut asked = loop_messages.as_array().unwrap().clone();
    asked.push(json!({"role": "assistant", "content": "It rains."}));
    asked.push(user("and tomorrow?"));
    let out = base(json!({"messages": asked}));
    assert!(out.get("thinking").is_some(), "{out}");

    // Without thinking, sampling passes unchanged.
    let out = translate(
        json!({"model": "m", "messages": [user("hi")], "temperature": 0.2,
        "top_p": 0.5, "seed": 1}),
    )
    .unwrap();
    assert_eq!(
        (out["temperature"].clone(), out["top_p"].clone()),
        (json!(0.2), json!(0.5))
    );
}

#[test]
fn empty_system_text_is_dropped() {
    let out = translate(json!({"model": "m", "messages": [
        {"role": "system", "content": ""}, {"role": "developer", "content": "d"}, user("hi")]}))
    .unwrap();
    assert_eq!(out["system"], "d");
    let out = translate(json!({"model": "m", "messages": [
        {"role": "system", "content": [{"type": "text", "text": ""}]}, user("hi")]}))
    .unwrap();
    assert!(out.get("system").is_none(), "{out}");
}

#[test]
fn context_window_stop_is_length_and_usage_has_no_reasoning_count() {
    let resp = response(
        json!([{"type": "thinking", "thinking": "t", "signature": "s"},
               {"type": "redacted_thinking", "data": "enc"},
               {"type": "text", "text": "x"}]),
        "model_context_window_exceeded",
        json!({"input_tokens": 3, "output_tokens": 9}),
    );
    let out = chat_response(&resp, 0);
    assert_eq!(out["choices"][0]["finish_reason"], "length");
    assert_eq!(out["choices"][0]["message"]["reasoning_content"], "t");
    assert_eq!(out["choices"][0]["message"]["content"], "x");
    assert!(out["usage"].get("completion_tokens_details").is_none());
}
