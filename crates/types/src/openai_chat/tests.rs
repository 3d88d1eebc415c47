use serde_json::{Value, json};

use super::*;
use crate::openai::ChatCompletionRequest;

type R = Result<(), serde_json::Error>;

fn round_trip(v: &Value) -> Result<Message, serde_json::Error> {
    let m: Message = serde_json::from_value(v.clone())?;
    assert_eq!(&serde_json::to_value(&m)?, v, "{m:?}");
    Ok(m)
}

#[test]
fn every_message_shape_round_trips() -> R {
    let shapes = [
        json!({"role": "system", "content": "be brief", "name": "sys"}),
        json!({"role": "system", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}),
        json!({"role": "developer", "content": "rules"}),
        json!({"role": "user", "content": "hi", "name": "ann"}),
        json!({"role": "user", "content": [
            {"type": "text", "text": "look"},
            {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "high"}},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            {"type": "input_audio", "input_audio": {"data": "UklG", "format": "wav"}},
            {"type": "file", "file": {"file_id": "file-1"}},
            {"type": "file", "file": {"file_data": "JVBE", "filename": "a.pdf"}},
        ]}),
        json!({"role": "assistant", "content": "ok"}),
        json!({"role": "assistant", "content": [{"type": "text", "text": "x"}, {"type": "refusal", "refusal": "no"}]}),
        json!({"role": "assistant", "content": null, "refusal": "no", "name": "bot",
            "audio": {"id": "audio_1"}}),
        json!({"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}]}),
        json!({"role": "assistant", "content": "x", "reasoning_content": "thought"}),
        json!({"role": "tool", "content": "42", "tool_call_id": "call_1"}),
        json!({"role": "tool", "content": [{"type": "text", "text": "42"}], "tool_call_id": "call_1"}),
        json!({"role": "function", "content": "42", "name": "f"}),
        json!({"role": "function", "content": null, "name": "f"}),
        json!({"role": "user", "content": [{"type": "text", "text": "t", "cache_control": {"type": "ephemeral"}}],
            "vendor": [1, 2.50]}),
    ];
    for shape in &shapes {
        round_trip(shape)?;
    }
    Ok(())
}

#[test]
fn type_and_role_need_not_come_first() -> R {
    let m: Message =
        serde_json::from_str(r#"{"content":[{"text":"a","type":"text"}],"role":"user"}"#)?;
    let Message::User { content, .. } = &m else {
        unreachable!("{m:?}")
    };
    assert_eq!(content.text_parts().collect::<Vec<_>>(), ["a"]);
    Ok(())
}

#[test]
fn multi_turn_conversation_parses() -> R {
    let body = json!({"model": "gpt-4o", "messages": [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": [
            {"type": "text", "text": "Weather here and "},
            {"type": "image_url", "image_url": {"url": "https://example.com/city.jpg"}},
            {"type": "text", "text": "there?"},
        ]},
        {"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_a", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}},
            {"id": "call_b", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Rome\"}"}},
        ]},
        {"role": "tool", "tool_call_id": "call_a", "content": "18C"},
        {"role": "tool", "tool_call_id": "call_b", "content": "24C"},
    ]});
    let req: ChatCompletionRequest = serde_json::from_value(body)?;
    let msgs = req.messages_typed()?;
    let roles: Vec<_> = msgs.iter().map(Message::role_str).collect();
    assert_eq!(roles, ["system", "user", "assistant", "tool", "tool"]);
    let Message::User { content, .. } = &msgs[1] else {
        unreachable!()
    };
    assert_eq!(
        content.text_parts().collect::<String>(),
        "Weather here and there?"
    );
    let Message::Assistant {
        content,
        tool_calls,
        ..
    } = &msgs[2]
    else {
        unreachable!()
    };
    assert!(content.is_none());
    let ids: Vec<_> = tool_calls.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["call_a", "call_b"]);
    assert_eq!(tool_calls[1].function.arguments, r#"{"city":"Rome"}"#);
    let Message::Tool {
        content,
        tool_call_id,
        ..
    } = &msgs[4]
    else {
        unreachable!()
    };
    assert_eq!(
        (content.joined().as_ref(), tool_call_id.as_str()),
        ("24C", "call_b")
    );
    Ok(())
}

#[test]
fn unknown_parts_survive_and_unknown_roles_error() -> R {
    let v = json!({"role": "user", "content": [
        {"type": "input_video", "video": {"url": "v"}, "n": 1.0},
        {"z": 1, "type": "text", "text": "t"},
    ]});
    let m = round_trip(&v)?;
    let Message::User {
        content: UserContent::Parts(parts),
        ..
    } = &m
    else {
        unreachable!()
    };
    assert!(matches!(&parts[0], UserPart::Other(u) if u.kind().as_deref() == Some("input_video")));
    // Read from text, an unknown part is written back byte for byte, in order.
    let text = r#"{"role":"user","content":[{"type":"input_video","video":{"url":"v"},"n":1.0}]}"#;
    let m: Message = serde_json::from_str(text)?;
    assert_eq!(serde_json::to_string(&m)?, text);

    let err = serde_json::from_str::<Message>(r#"{"role":"wizard","content":"x"}"#)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("wizard"), "{err}");
    let err = serde_json::from_str::<Message>(r#"{"content":"x"}"#)
        .err()
        .map(|e| e.to_string());
    assert!(err.unwrap_or_default().contains("role"));
    // An error names the field, not the value.
    let err = serde_json::from_str::<Message>(
        r#"{"role":"tool","content":"x","tool_call_id":["CANARY"]}"#,
    )
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(
        err.contains("tool_call_id") && !err.contains("CANARY"),
        "{err}"
    );
    Ok(())
}

#[test]
fn joined_concatenates_without_separator() -> R {
    let c: TextContent =
        serde_json::from_str(r#"[{"type":"text","text":"a"},{"type":"text","text":"b"}]"#)?;
    assert_eq!(c.joined(), "ab");
    assert!(
        serde_json::from_str::<TextContent>(r#"[{"type":"image_url","image_url":{"url":"u"}}]"#)
            .is_err()
    );
    Ok(())
}

const FULL_REQUEST: &str = r#"{
    "model": "gpt-4o",
    "messages": [
        {"role": "system", "content": "CANARY-1"},
        {"role": "user", "content": [{"type": "text", "text": "CANARY-2"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,CANARY-3"}},
            {"type": "input_audio", "input_audio": {"data": "CANARY-4", "format": "mp3"}},
            {"type": "file", "file": {"file_data": "CANARY-5", "filename": "f.pdf"}},
            {"type": "new_kind", "payload": "CANARY-6"}]},
        {"role": "assistant", "content": [{"type": "refusal", "refusal": "CANARY-7"}],
            "refusal": "CANARY-8", "reasoning_content": "CANARY-9",
            "tool_calls": [{"id": "call_1", "type": "function",
                "function": {"name": "lookup", "arguments": "{\"q\":\"CANARY-10\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "CANARY-11"},
        {"role": "function", "name": "lookup", "content": "CANARY-12"}
    ],
    "temperature": 0.2,
    "tools": [{"type": "function", "function": {"name": "lookup", "description": "CANARY-13",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}, "strict": true}}],
    "tool_choice": {"type": "function", "function": {"name": "lookup"}},
    "response_format": {"type": "json_schema", "json_schema": {"name": "answer", "strict": true,
        "schema": {"type": "object", "description": "CANARY-14"}}},
    "stop": ["CANARY-15", "END"]
}"#;

#[test]
fn request_helpers_read_raw_fields() -> R {
    let req: ChatCompletionRequest = serde_json::from_str(FULL_REQUEST)?;
    let tools = req.tools()?.unwrap_or_default();
    assert_eq!(tools.len(), 1);
    assert_eq!(tools[0].function.name, "lookup");
    assert_eq!(tools[0].function.strict, Some(true));
    let params: Value = serde_json::from_str(
        tools[0]
            .function
            .parameters
            .as_ref()
            .map_or("null", |p| p.get()),
    )?;
    assert_eq!(params["properties"]["q"]["type"], "string");
    let tool_round: Value = serde_json::to_value(&tools)?;
    let orig: Value = serde_json::from_str(FULL_REQUEST)?;
    assert_eq!(tool_round, orig["tools"]);

    assert!(
        matches!(req.tool_choice()?, Some(ToolChoice::Function { function, .. }) if function.name == "lookup")
    );
    assert_eq!(
        serde_json::to_value(req.tool_choice()?)?,
        orig["tool_choice"]
    );
    for (s, want) in [("none", "None"), ("auto", "Auto"), ("required", "Required")] {
        let tc: ToolChoice = serde_json::from_value(json!(s))?;
        assert_eq!(format!("{tc:?}"), want);
        assert_eq!(serde_json::to_value(&tc)?, json!(s));
    }
    assert!(serde_json::from_value::<ToolChoice>(json!("sometimes")).is_err());
    let other: ToolChoice = serde_json::from_value(
        json!({"type": "allowed_tools", "allowed_tools": {"mode": "auto"}}),
    )?;
    assert!(matches!(other, ToolChoice::Other(_)));

    let Some(ResponseFormat::JsonSchema { json_schema, .. }) = req.response_format()? else {
        unreachable!()
    };
    assert_eq!(
        (json_schema.name.as_str(), json_schema.strict),
        ("answer", Some(true))
    );
    assert_eq!(
        serde_json::to_value(req.response_format()?)?,
        orig["response_format"]
    );
    let rf: ResponseFormat = serde_json::from_value(json!({"type": "json_object"}))?;
    assert!(matches!(rf, ResponseFormat::JsonObject { .. }));
    assert_eq!(serde_json::to_value(&rf)?, json!({"type": "json_object"}));

    let stop = req
        .stop()?
        .map(|s| s.sequences().to_vec())
        .unwrap_or_default();
    assert_eq!(stop, ["CANARY-15", "END"]);
    let one: Stop = serde_json::from_value(json!("\n"))?;
    assert_eq!(one.sequences(), ["\n"]);

    let bare: ChatCompletionRequest =
        serde_json::from_str(r#"{"model":"m","messages":[],"stop":null}"#)?;
    assert!(bare.tools()?.is_none() && bare.tool_choice()?.is_none());
    assert!(bare.response_format()?.is_none() && bare.stop()?.is_none());

    let msgs = req.messages_typed()?;
    let back: Value = serde_json::to_value(&msgs)?;
    assert_eq!(back, orig["messages"]);
    Ok(())
}

#[test]
fn debug_never_prints_content() -> R {
    let req: ChatCompletionRequest = serde_json::from_str(FULL_REQUEST)?;
    let printed = format!(
        "{:?} {:?} {:?} {:?} {:?}",
        req.messages_typed()?,
        req.tools()?,
        req.tool_choice()?,
        req.response_format()?,
        req.stop()?,
    );
    assert!(!printed.contains("CANARY"), "{printed}");
    for shown in [
        "assistant",
        "call_1",
        "lookup",
        "image_url",
        "new_kind",
        "answer",
        "mp3",
    ] {
        assert!(printed.contains(shown), "{shown} missing: {printed}");
    }
    Ok(())
}
