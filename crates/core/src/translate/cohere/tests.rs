//! Unit tests: OpenAI bodies in, whole Cohere bodies out, and back for answers and streams.

use portcullis_types::openai::{ChatCompletionRequest, EmbeddingRequest};
use serde_json::{Value, json};

use super::stream::ChatStream;
use super::{ChatResponse, EmbedResponse, chat_request, chat_response, embed_request};
use crate::provider::ProviderError;
use crate::translate::TranslateError;

fn translate(body: Value) -> Result<Value, TranslateError> {
    let req: ChatCompletionRequest = serde_json::from_value(body).unwrap();
    let out = chat_request(&req, "command-a", false)?;
    Ok(serde_json::to_value(&out).unwrap())
}

fn user(text: &str) -> Value {
    json!({"role": "user", "content": text})
}

#[test]
fn requests_translate_to_whole_cohere_bodies() {
    let weather = json!({"type": "object", "properties": {"city": {"type": "string"}}});
    let cases: Vec<(&str, Value, Value)> = vec![
        (
            "plain text, sampling fields renamed",
            json!({"model": "m", "messages": [user("hi")], "temperature": 0.2, "top_p": 0.9,
                   "seed": 7, "frequency_penalty": 0.1, "presence_penalty": 0.3,
                   "max_tokens": 10, "stop": "END", "user": "u-1", "logprobs": true}),
            json!({"model": "command-a", "messages": [{"role": "user", "content": "hi"}],
                   "temperature": 0.2, "p": 0.9, "seed": 7, "frequency_penalty": 0.1,
                   "presence_penalty": 0.3, "max_tokens": 10, "stop_sequences": ["END"]}),
        ),
        (
            "system and developer anywhere become one leading system message",
            json!({"model": "m", "max_completion_tokens": 20, "max_tokens": 10, "messages": [
                user("a"),
                {"role": "system", "content": "be brief"},
                {"role": "developer", "content": [{"type": "text", "text": "be kind"}]},
            ]}),
            json!({"model": "command-a", "max_tokens": 20, "messages": [
                {"role": "system", "content": [{"type": "text", "text": "be brief"},
                                               {"type": "text", "text": "be kind"}]},
                {"role": "user", "content": "a"},
            ]}),
        ),
        (
            "consecutive same-role turns are kept as they are; empty assistant turn dropped",
            json!({"model": "m", "messages": [
                {"role": "system", "content": "sys"},
                user("a"), user("b"),
                {"role": "assistant", "content": ""},
                {"role": "assistant", "content": "c", "name": "bot"},
            ]}),
            json!({"model": "command-a", "messages": [
                {"role": "system", "content": "sys"},
                {"role": "user", "content": "a"},
                {"role": "user", "content": "b"},
                {"role": "assistant", "content": "c"},
            ]}),
        ),
        (
            "images: data URL and http URL with detail",
            json!({"model": "m", "messages": [{"role": "user", "content": [
                {"type": "text", "text": "what?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                {"type": "image_url", "image_url": {"url": "http://example.com/cat.jpg", "detail": "low"}},
            ]}]}),
            json!({"model": "command-a", "messages": [{"role": "user", "content": [
                {"type": "text", "text": "what?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                {"type": "image_url", "image_url": {"url": "http://example.com/cat.jpg", "detail": "low"}},
            ]}]}),
        ),
        (
            "parallel tool calls, their results, tool plan and reasoning round trip",
            json!({"model": "m", "tools": [
                    {"type": "function", "function": {"name": "get", "description": "weather", "parameters": weather}},
                    {"type": "function", "function": {"name": "now"}},
                ],
                "messages": [
                user("weather?"),
                {"role": "assistant", "content": "checking", "reasoning_content": "think",
                 "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "get", "arguments": "{\"city\":\"Oslo\"}"}},
                    {"id": "call_2", "type": "function", "function": {"name": "now", "arguments": ""}},
                ]},
                {"role": "tool", "tool_call_id": "call_1", "content": "rain"},
                {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "noon"}]},
            ]}),
            json!({"model": "command-a",
                "tools": [
                    {"type": "function", "function": {"name": "get", "description": "weather", "parameters": weather}},
                    {"type": "function", "function": {"name": "now", "parameters": {"type": "object", "properties": {}}}},
                ],
                "messages": [
                {"role": "user", "content": "weather?"},
                {"role": "assistant", "tool_plan": "checking",
                 "content": [{"type": "thinking", "thinking": "think"}],
                 "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "get", "arguments": "{\"city\":\"Oslo\"}"}},
                    {"id": "call_2", "type": "function", "function": {"name": "now", "arguments": "{}"}},
                ]},
                {"role": "tool", "tool_call_id": "call_1", "content": "rain"},
                {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "noon"}]},
            ]}),
        ),
        (
            "tool choice required, strict tools",
            json!({"model": "m", "messages": [user("x")], "tool_choice": "required",
                   "parallel_tool_calls": false,
                   "tools": [{"type": "function", "function": {"name": "get", "parameters": weather, "strict": true}}]}),
            json!({"model": "command-a", "messages": [{"role": "user", "content": "x"}],
                   "tool_choice": "REQUIRED", "strict_tools": true,
                   "tools": [{"type": "function", "function": {"name": "get", "parameters": weather}}]}),
        ),
        (
            "a named function offers only that tool, required",
            json!({"model": "m", "messages": [user("x")],
                   "tool_choice": {"type": "function", "function": {"name": "now"}},
                   "tools": [{"type": "function", "function": {"name": "get", "parameters": weather}},
                             {"type": "function", "function": {"name": "now", "parameters": weather}}]}),
            json!({"model": "command-a", "messages": [{"role": "user", "content": "x"}],
                   "tool_choice": "REQUIRED",
                   "tools": [{"type": "function", "function": {"name": "now", "parameters": weather}}]}),
        ),
        (
            "tool choice none and auto",
            json!({"model": "m", "messages": [user("x")], "tool_choice": "none"}),
            json!({"model": "command-a", "messages": [{"role": "user", "content": "x"}],
                   "tool_choice": "NONE"}),
        ),
        (
            "json mode",
            json!({"model": "m", "messages": [user("x")], "response_format": {"type": "json_object"}}),
            json!({"model": "command-a", "messages": [{"role": "user", "content": "x"}],
                   "response_format": {"type": "json_object"}}),
        ),
        (
            "json schema",
            json!({"model": "m", "messages": [user("x")], "response_format": {"type": "json_schema",
                   "json_schema": {"name": "w", "strict": true, "schema": weather}}}),
            json!({"model": "command-a", "messages": [{"role": "user", "content": "x"}],
                   "response_format": {"type": "json_object", "json_schema": weather}}),
        ),
        (
            "text format, auto choice, n=1 and null fields are no-ops",
            json!({"model": "m", "messages": [user("x")], "response_format": {"type": "text"},
                   "tool_choice": "auto", "n": 1, "temperature": null}),
            json!({"model": "command-a", "messages": [{"role": "user", "content": "x"}]}),
        ),
        (
            "reasoning effort high, safety mode passed on",
            json!({"model": "m", "messages": [user("x")], "reasoning_effort": "high",
                   "safety_mode": "STRICT"}),
            json!({"model": "command-a", "messages": [{"role": "user", "content": "x"}],
                   "thinking": {"type": "enabled", "token_budget": 16384}, "safety_mode": "STRICT"}),
        ),
        (
            "reasoning effort none disables thinking",
            json!({"model": "m", "messages": [user("x")], "reasoning_effort": "none"}),
            json!({"model": "command-a", "messages": [{"role": "user", "content": "x"}],
                   "thinking": {"type": "disabled"}}),
        ),
        (
            "assistant refusal and parts",
            json!({"model": "m", "messages": [
                {"role": "assistant", "content": [{"type": "text", "text": "a"}, {"type": "refusal", "refusal": "b"}]},
                {"role": "assistant", "content": null, "refusal": "no"},
            ]}),
            json!({"model": "command-a", "messages": [
                {"role": "assistant", "content": "ab"},
                {"role": "assistant", "content": "no"},
            ]}),
        ),
    ];
    for (name, input, want) in cases {
        let got = translate(input).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn streaming_requests_say_so() {
    let req: ChatCompletionRequest = serde_json::from_value(json!({"model": "m", "stream": true,
        "stream_options": {"include_usage": true}, "messages": [user("x")]}))
    .unwrap();
    let body = serde_json::to_value(chat_request(&req, "c", true).unwrap()).unwrap();
    assert_eq!(body["stream"], true);
    assert!(body.get("stream_options").is_none());
}

#[test]
fn untranslatable_requests_are_refused_without_content() {
    let cases: Vec<(Value, TranslateError)> = vec![
        (
            json!({"model": "m", "messages": [{"role": "function", "name": "f", "content": "x"}]}),
            TranslateError::UnsupportedRole { role: "function" },
        ),
        (
            json!({"model": "m", "messages": [{"role": "user", "content": [
                {"type": "input_audio", "input_audio": {"data": "SECRET", "format": "wav"}}]}]}),
            TranslateError::UnsupportedContentPart {
                kind: "input_audio".into(),
            },
        ),
        (
            json!({"model": "m", "messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "ftp://SECRET/x.png"}}]}]}),
            TranslateError::InvalidImageUrl,
        ),
        (
            json!({"model": "m", "messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "data:image/png,SECRET"}}]}]}),
            TranslateError::InvalidImageUrl,
        ),
        (
            json!({"model": "m", "messages": [user("x")], "n": 2}),
            TranslateError::UnsupportedValue { field: "n" },
        ),
        (
            json!({"model": "m", "messages": [user("x")], "reasoning_effort": "SECRET"}),
            TranslateError::UnsupportedValue {
                field: "reasoning_effort",
            },
        ),
        (
            json!({"model": "m", "messages": [user("x")],
                   "tool_choice": {"type": "function", "function": {"name": "SECRET"}}}),
            TranslateError::UnsupportedValue {
                field: "tool_choice",
            },
        ),
        (
            json!({"model": "m", "messages": [user("x")], "temperature": "SECRET"}),
            TranslateError::InvalidField {
                field: "temperature",
            },
        ),
        (
            json!({"model": "m", "messages": "SECRET"}),
            TranslateError::InvalidField { field: "messages" },
        ),
    ];
    for (input, want) in cases {
        let err = translate(input).unwrap_err();
        assert!(!err.to_string().contains("SECRET"), "{err}");
        assert_eq!(err, want);
    }
}

fn answer(body: Value) -> Result<(Value, portcullis_types::Usage), ProviderError> {
    let resp: ChatResponse = serde_json::from_value(body).unwrap();
    chat_response(&resp, "command-a", 1_700_000_000)
}

#[test]
fn answers_translate_with_every_finish_reason_and_usage() {
    let (body, usage) = answer(json!({
        "id": "c1", "finish_reason": "COMPLETE",
        "message": {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "hmm"}, {"type": "text", "text": "Hello"},
            {"type": "text", "text": " world"}],
            "citations": [{"start": 0, "end": 5, "text": "Hello"}]},
        "usage": {"billed_units": {"input_tokens": 5, "output_tokens": 2},
                  "tokens": {"input_tokens": 71, "output_tokens": 2}, "cached_tokens": 64}
    }))
    .unwrap();
    assert_eq!(
        body,
        json!({"id": "c1", "object": "chat.completion", "created": 1_700_000_000,
            "model": "command-a", "choices": [{"index": 0, "message": {"role": "assistant",
            "content": "Hello world", "refusal": null, "reasoning_content": "hmm"},
            "logprobs": null, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 71, "completion_tokens": 2, "total_tokens": 73,
                "prompt_tokens_details": {"cached_tokens": 64},
                "completion_tokens_details": {"reasoning_tokens": 0}}})
    );
    assert_eq!(
        (
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.cached_tokens
        ),
        (71, 2, 64)
    );

    for (reason, want) in [
        ("COMPLETE", "stop"),
        ("STOP_SEQUENCE", "stop"),
        ("MAX_TOKENS", "length"),
        ("TOOL_CALL", "tool_calls"),
        ("SOMETHING_NEW", "stop"),
    ] {
        let (body, _) = answer(json!({"id": "x", "finish_reason": reason,
            "message": {"role": "assistant", "content": [{"type": "text", "text": "t"}]}}))
        .unwrap();
        assert_eq!(body["choices"][0]["finish_reason"], want, "{reason}");
        assert_eq!(
            body["usage"]["total_tokens"], 0,
            "no usage reported counts as zero"
        );
    }
    let err = answer(json!({"id": "x", "finish_reason": "ERROR", "message": {"content": []}}));
    assert!(matches!(err, Err(ProviderError::Server { .. })), "{err:?}");
    let err = answer(json!({"id": "x", "finish_reason": "TIMEOUT", "message": {"content": []}}));
    assert_eq!(err.unwrap_err(), ProviderError::Timeout);
}

#[test]
fn tool_call_answers_use_the_plan_as_content_and_billed_units_as_fallback() {
    let (body, usage) = answer(json!({
        "id": "c2", "finish_reason": "TOOL_CALL",
        "message": {"role": "assistant", "tool_plan": "I will check both.", "tool_calls": [
            {"id": "get_1", "type": "function", "function": {"name": "get", "arguments": "{\"city\":\"Oslo\"}"}},
            {"id": "get_2", "type": "function", "function": {"name": "get", "arguments": "{\"city\":\"Rome\"}"}},
        ]},
        "usage": {"billed_units": {"input_tokens": 30.0, "output_tokens": 12.0}}
    }))
    .unwrap();
    let message = &body["choices"][0]["message"];
    assert_eq!(message["content"], "I will check both.");
    assert_eq!(message["tool_calls"][1]["id"], "get_2");
    assert_eq!(
        message["tool_calls"][1]["function"],
        json!({"name": "get", "arguments": "{\"city\":\"Rome\"}"})
    );
    assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!((usage.prompt_tokens, usage.completion_tokens), (30, 12));

    let (body, _) = answer(json!({"id": "c3", "finish_reason": "TOOL_CALL", "message": {
        "tool_calls": [{"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}}))
    .unwrap();
    assert_eq!(
        body["choices"][0]["message"]["content"],
        Value::Null,
        "only tool calls: null content"
    );
    let (body, _) =
        answer(json!({"id": "c4", "finish_reason": "COMPLETE", "message": {}})).unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "", "empty answer");
}

fn run(events: &[(&str, Value)]) -> Result<Vec<Value>, ProviderError> {
    let mut stream = ChatStream::new("command-a", 7);
    let mut out = Vec::new();
    for (name, data) in events {
        out.extend(stream.push(Some(name), data.to_string().as_bytes())?);
    }
    stream.finish()?;
    Ok(out
        .iter()
        .map(|c| serde_json::from_slice(c).unwrap())
        .collect())
}

fn deltas(chunks: &[Value]) -> Vec<&Value> {
    chunks
        .iter()
        .filter_map(|c| c["choices"].get(0).map(|c| &c["delta"]))
        .collect()
}

#[test]
fn text_streams_end_with_finish_and_usage_chunks() {
    let chunks = run(&[
        ("message-start", json!({"id": "s1", "type": "message-start",
            "delta": {"message": {"role": "assistant", "content": [], "tool_plan": "", "tool_calls": [], "citations": []}}})),
        ("content-start", json!({"type": "content-start", "index": 0,
            "delta": {"message": {"content": {"type": "thinking", "thinking": ""}}}})),
        ("content-delta", json!({"type": "content-delta", "index": 0,
            "delta": {"message": {"content": {"thinking": "hmm"}}}})),
        ("content-end", json!({"type": "content-end", "index": 0})),
        ("content-start", json!({"type": "content-start", "index": 1,
            "delta": {"message": {"content": {"type": "text", "text": ""}}}})),
        ("content-delta", json!({"type": "content-delta", "index": 1,
            "delta": {"message": {"content": {"text": "Hel"}}}})),
        ("citation-start", json!({"type": "citation-start", "index": 0,
            "delta": {"message": {"citations": {"start": 0, "end": 3, "text": "Hel", "sources": []}}}})),
        ("citation-end", json!({"type": "citation-end", "index": 0})),
        ("content-delta", json!({"type": "content-delta", "index": 1,
            "delta": {"message": {"content": {"text": "lo"}}}})),
        ("content-end", json!({"type": "content-end", "index": 1})),
        ("message-end", json!({"type": "message-end", "delta": {"finish_reason": "MAX_TOKENS",
            "usage": {"billed_units": {"input_tokens": 3, "output_tokens": 4},
                      "tokens": {"input_tokens": 9, "output_tokens": 4}, "cached_tokens": 2}}})),
    ])
    .unwrap();
    assert_eq!(chunks.len(), 6, "{chunks:#?}");
    assert!(
        chunks
            .iter()
            .all(|c| c["id"] == "s1" && c["model"] == "command-a")
    );
    let d = deltas(&chunks);
    assert_eq!(d[0], &json!({"role": "assistant", "content": ""}));
    assert_eq!(d[1], &json!({"reasoning_content": "hmm"}));
    assert_eq!(d[2], &json!({"content": "Hel"}));
    assert_eq!(d[3], &json!({"content": "lo"}));
    assert_eq!(chunks[4]["choices"][0]["finish_reason"], "length");
    assert_eq!(chunks[5]["choices"], json!([]));
    assert_eq!(
        chunks[5]["usage"],
        json!({"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13,
            "prompt_tokens_details": {"cached_tokens": 2},
            "completion_tokens_details": {"reasoning_tokens": 0}})
    );
}

#[test]
fn parallel_tool_calls_stream_with_ids_names_and_whole_arguments() {
    let call_start = |index: u64, id: &str, name: &str| {
        json!({"type": "tool-call-start", "index": index, "delta": {"message": {"tool_calls":
            {"id": id, "type": "function", "function": {"name": name, "arguments": ""}}}}})
    };
    let call_delta = |index: u64, args: &str| {
        json!({"type": "tool-call-delta", "index": index, "delta": {"message": {"tool_calls":
            {"function": {"arguments": args}}}}})
    };
    let chunks = run(&[
        ("message-start", json!({"id": "s2", "type": "message-start", "delta": {"message": {"role": "assistant"}}})),
        ("tool-plan-delta", json!({"type": "tool-plan-delta", "delta": {"message": {"tool_plan": "I will"}}})),
        ("tool-plan-delta", json!({"type": "tool-plan-delta", "delta": {"message": {"tool_plan": " look."}}})),
        ("tool-call-start", call_start(0, "get_a", "get")),
        ("tool-call-delta", call_delta(0, "{\"city\":")),
        ("tool-call-delta", call_delta(0, "\"Oslo\"}")),
        ("tool-call-end", json!({"type": "tool-call-end", "index": 0})),
        ("tool-call-start", call_start(1, "get_b", "get")),
        ("tool-call-delta", call_delta(1, "{\"city\":\"Rome\"}")),
        ("tool-call-end", json!({"type": "tool-call-end", "index": 1})),
        ("message-end", json!({"type": "message-end", "delta": {"finish_reason": "TOOL_CALL",
            "usage": {"billed_units": {"input_tokens": 20, "output_tokens": 10}}}})),
    ])
    .unwrap();
    let d = deltas(&chunks);
    let plan: String = d.iter().filter_map(|d| d["content"].as_str()).collect();
    assert_eq!(plan, "I will look.");
    let mut calls: Vec<(String, String, String)> = Vec::new();
    for delta in &d {
        for call in delta["tool_calls"].as_array().into_iter().flatten() {
            let i = usize::try_from(call["index"].as_u64().unwrap()).unwrap();
            if let Some(id) = call["id"].as_str() {
                assert_eq!(i, calls.len(), "indexes in start order");
                assert_eq!(call["function"]["arguments"], "");
                calls.push((
                    id.into(),
                    call["function"]["name"].as_str().unwrap().into(),
                    String::new(),
                ));
            } else {
                calls[i]
                    .2
                    .push_str(call["function"]["arguments"].as_str().unwrap());
            }
        }
    }
    assert_eq!(
        calls,
        vec![
            ("get_a".into(), "get".into(), "{\"city\":\"Oslo\"}".into()),
            ("get_b".into(), "get".into(), "{\"city\":\"Rome\"}".into()),
        ]
    );
    let finish = chunks
        .iter()
        .find(|c| c["choices"][0]["finish_reason"].is_string())
        .unwrap();
    assert_eq!(finish["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(chunks.last().unwrap()["usage"]["total_tokens"], 30);
}

#[test]
fn event_names_stand_in_for_missing_types_and_role_comes_with_first_content() {
    let mut stream = ChatStream::new("m", 1);
    let out = stream
        .push(
            Some("content-delta"),
            br#"{"delta":{"message":{"content":{"text":"x"}}}}"#,
        )
        .unwrap();
    let first: Value = serde_json::from_slice(&out[0]).unwrap();
    assert_eq!(
        first["choices"][0]["delta"],
        json!({"content": "x", "role": "assistant"})
    );
    assert!(stream.push(None, b"[DONE]").unwrap().is_empty());
    assert!(stream.finish().is_err(), "no message-end yet");
    let out = stream
        .push(
            None,
            br#"{"type":"message-end","delta":{"finish_reason":"COMPLETE"}}"#,
        )
        .unwrap();
    assert_eq!(out.len(), 2);
    assert!(stream.is_done());
    assert!(stream.finish().is_ok());
    assert!(
        stream
            .push(None, br#"{"type":"content-delta"}"#)
            .unwrap()
            .is_empty(),
        "nothing after the end"
    );
}

#[test]
fn broken_and_failed_streams_are_errors() {
    let mut s = ChatStream::new("m", 1);
    assert!(matches!(
        s.push(Some("content-delta"), b"{not json"),
        Err(ProviderError::InvalidResponse(_))
    ));
    let mut s = ChatStream::new("m", 1);
    assert!(matches!(
        s.push(
            None,
            br#"{"type":"content-delta","delta":{"message":{"content":"SECRET"}}}"#
        ),
        Err(ProviderError::InvalidResponse(m)) if !m.contains("SECRET")
    ));
    let mut s = ChatStream::new("m", 1);
    assert!(matches!(
        s.push(
            None,
            br#"{"type":"tool-call-delta","index":3,"delta":{"message":{"tool_calls":{"function":{"arguments":"{}"}}}}}"#
        ),
        Err(ProviderError::InvalidResponse(_))
    ));
    let mut s = ChatStream::new("m", 1);
    assert!(matches!(
        s.push(None, br#"{"message":"internal error"}"#),
        Err(ProviderError::StreamBroken(m)) if m == "internal error"
    ));
    let mut s = ChatStream::new("m", 1);
    let err = s
        .push(
            None,
            br#"{"type":"message-end","delta":{"finish_reason":"ERROR","error":"model crashed"}}"#,
        )
        .unwrap_err();
    assert_eq!(
        err,
        ProviderError::Server {
            status: 502,
            message: Some("model crashed".into())
        }
    );
    let mut s = ChatStream::new("m", 1);
    let err = s
        .push(
            None,
            br#"{"type":"message-end","delta":{"finish_reason":"TIMEOUT"}}"#,
        )
        .unwrap_err();
    assert_eq!(err, ProviderError::Timeout);
}

#[test]
fn embeddings_translate_both_ways() {
    let req: EmbeddingRequest = serde_json::from_value(json!({"model": "e", "input": ["a", "b"],
        "dimensions": 256, "input_type": "search_query", "user": "u"}))
    .unwrap();
    let body = embed_request(&req, "embed-v4.0").unwrap();
    assert!(!body.base64);
    assert_eq!(
        serde_json::to_value(&body).unwrap(),
        json!({"model": "embed-v4.0", "texts": ["a", "b"], "input_type": "search_query",
            "embedding_types": ["float"], "output_dimension": 256})
    );
    let req: EmbeddingRequest =
        serde_json::from_value(json!({"model": "e", "input": "one"})).unwrap();
    let body = serde_json::to_value(embed_request(&req, "x").unwrap()).unwrap();
    assert_eq!(body["texts"], json!(["one"]));
    assert_eq!(body["input_type"], "search_document");
    for (input, field) in [
        (json!([1, 2, 3]), "input"),
        (json!([[1, 2]]), "input"),
        (json!(7), "input"),
    ] {
        let req: EmbeddingRequest =
            serde_json::from_value(json!({"model": "e", "input": input})).unwrap();
        assert_eq!(
            embed_request(&req, "x").unwrap_err(),
            TranslateError::UnsupportedValue { field }
        );
    }
    let req: EmbeddingRequest =
        serde_json::from_value(json!({"model": "e", "input": "x", "encoding_format": "uint8"}))
            .unwrap();
    assert!(embed_request(&req, "x").is_err());

    let resp: EmbedResponse = serde_json::from_value(json!({"id": "e1",
        "embeddings": {"float": [[0.5, -1.25], [0.0123291, 2.0]]}, "texts": ["a", "b"],
        "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": 4}},
        "response_type": "embeddings_by_type"}))
    .unwrap();
    let (bytes, usage) = super::embed_response(&resp, "embed-v4.0", false).unwrap();
    let text = std::str::from_utf8(&bytes).unwrap();
    assert!(
        text.contains("[0.0123291, 2.0]") || text.contains("[0.0123291,2.0]"),
        "vectors pass through as written: {text}"
    );
    let list: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(list["object"], "list");
    assert_eq!(list["model"], "embed-v4.0");
    assert_eq!(list["data"][1]["index"], 1);
    assert_eq!(list["data"][0]["embedding"], json!([0.5, -1.25]));
    assert_eq!(
        list["usage"],
        json!({"prompt_tokens": 4, "total_tokens": 4})
    );
    assert_eq!((usage.prompt_tokens, usage.total_tokens), (4, 4));

    let (bytes, _) = super::embed_response(&resp, "m", true).unwrap();
    let list: Value = serde_json::from_slice(&bytes).unwrap();
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(list["data"][0]["embedding"].as_str().unwrap())
        .unwrap();
    let floats: Vec<f32> = raw
        .chunks(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    assert_eq!(floats, vec![0.5, -1.25]);
}
