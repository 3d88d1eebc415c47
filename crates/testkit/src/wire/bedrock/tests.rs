//! The mock's own checks: its signature check accepts a correctly signed request and catches
//! every tampering, and its streams decode with the gateway's decoder.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use portcullis_core::aws_eventstream::{EventStreamDecoder, MESSAGE_TYPE};
use serde_json::{Value, json};

use super::*;
use crate::wire::{CannedCall, CannedUsage};

/// A request signed as a client holding `secret` and `token` would sign it, `age` ago.
fn signed(body: &Value, secret: &str, token: Option<&str>, age: Duration) -> Recorded {
    let raw = body.to_string();
    let path = "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse";
    let host = "127.0.0.1:4567";
    let base = [("content-type", "application/json"), ("host", host)];
    let identity: Identity = Credentials::new(
        ACCESS_KEY_ID,
        secret,
        token.map(str::to_owned),
        None,
        "test",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(REGION)
        .name("bedrock")
        .time(SystemTime::now() - age)
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let signable = SignableRequest::new(
        "POST",
        format!("http://{host}{path}"),
        base.into_iter(),
        SignableBody::Bytes(raw.as_bytes()),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    let mut headers: HashMap<String, String> = base
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    for (name, value) in instructions.headers() {
        headers.insert(name.to_owned(), value.to_owned());
    }
    headers.insert("content-length".into(), raw.len().to_string());
    Recorded {
        method: "POST".into(),
        path: path.into(),
        query: String::new(),
        headers,
        body: body.clone(),
        raw_body: Bytes::from(raw),
    }
}

fn body() -> Value {
    json!({
        "messages": [
            {"role": "user", "content": [{"text": "hi"},
                {"image": {"format": "png", "source": {"bytes": "iVBO"}}}]},
            {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t1", "name": "f",
                "input": {"a": 1}}}]},
            {"role": "user", "content": [{"toolResult": {"toolUseId": "t1",
                "content": [{"text": "ok"}]}}]},
        ],
        "system": [{"text": "be brief"},
                   {"text": "Respond with a single valid JSON object only, with no other text."}],
        "inferenceConfig": {"maxTokens": 50, "temperature": 0.5, "stopSequences": ["END"]},
        "toolConfig": {"tools": [{"toolSpec": {"name": "f", "inputSchema": {"json": {}}}}]},
    })
}

fn good() -> Recorded {
    signed(
        &body(),
        SECRET_ACCESS_KEY,
        Some(SESSION_TOKEN),
        Duration::ZERO,
    )
}

#[test]
fn a_correct_signature_passes_and_the_request_reads_back() {
    let wire = BedrockWire::default();
    let seen = wire.seen(&good()).unwrap();
    assert_eq!(seen.model, "anthropic.claude-3-haiku-20240307-v1:0");
    assert!(!seen.stream);
    assert_eq!(seen.system, ["be brief"]);
    assert!(seen.json_mode);
    assert_eq!(seen.tools, ["f"]);
    assert_eq!((seen.max_tokens, seen.temperature), (Some(50), Some(0.5)));
    assert_eq!(seen.stop, ["END"]);
    assert_eq!(
        seen.messages[0].parts,
        [
            SeenPart::Text("hi".into()),
            SeenPart::Image("data:image/png;base64,iVBO".into())
        ]
    );
    assert_eq!(
        seen.messages[1].parts,
        [SeenPart::ToolCall {
            id: "t1".into(),
            name: "f".into(),
            arguments: json!({"a": 1})
        }]
    );
    assert_eq!(
        seen.messages[2].parts,
        [SeenPart::ToolResult {
            id: "t1".into(),
            content: "ok".into()
        }]
    );
}

#[test]
fn the_signature_check_catches_tampering_and_wrong_credentials() {
    let wire = BedrockWire::default();
    let expect_err = |r: &Recorded, why: &str| {
        let err = wire.seen(r).expect_err(why);
        assert!(!err.contains(SECRET_ACCESS_KEY), "{err}");
        err
    };

    wire.verify(&good()).unwrap();

    let mut r = good();
    let tampered = r
        .raw_body
        .to_vec()
        .iter()
        .map(|b| if *b == b'h' { b'H' } else { *b })
        .collect::<Vec<_>>();
    r.raw_body = Bytes::from(tampered);
    let err = expect_err(&r, "a tampered body");
    assert!(err.contains("does not match"), "{err}");

    let r = signed(
        &body(),
        "not-the-secret",
        Some(SESSION_TOKEN),
        Duration::ZERO,
    );
    assert!(expect_err(&r, "a wrong secret").contains("does not match"));

    let mut r = good();
    r.path = r.path.replace("haiku", "sonnet");
    assert!(expect_err(&r, "another path").contains("does not match"));

    let mut r = good();
    r.headers.insert("content-type".into(), "text/plain".into());
    expect_err(&r, "a changed signed header");

    let r = signed(&body(), SECRET_ACCESS_KEY, None, Duration::ZERO);
    assert!(expect_err(&r, "no session token").contains("missing"));

    let r = signed(
        &body(),
        SECRET_ACCESS_KEY,
        Some("other-token"),
        Duration::ZERO,
    );
    expect_err(&r, "another session token");

    let r = signed(
        &body(),
        SECRET_ACCESS_KEY,
        Some(SESSION_TOKEN),
        Duration::from_secs(3600),
    );
    assert!(expect_err(&r, "an old signature").contains("too far"));

    let mut r = good();
    r.headers.remove("authorization");
    expect_err(&r, "no signature");

    // Credentials without a session token: none may be sent.
    let no_token = BedrockWire {
        session_token: None,
        ..BedrockWire::default()
    };
    no_token
        .verify(&signed(&body(), SECRET_ACCESS_KEY, None, Duration::ZERO))
        .unwrap();
    assert!(no_token.verify(&good()).is_err());
}

#[test]
fn guarded_answers_bad_signatures_like_aws() {
    let wire = BedrockWire::default();
    let mut r = good();
    r.raw_body = Bytes::from_static(b"{}");
    match wire.guarded(&r, |_| Reply::json(200, json!({}))) {
        Reply::WithHeaders(headers, reply) => {
            assert!(headers.iter().any(
                |(n, v)| n == "x-amzn-errortype" && v.starts_with("InvalidSignatureException:")
            ));
            assert!(matches!(*reply, Reply::Json { status: 403, .. }));
        }
        other => panic!("{other:?}"),
    }
}

fn canned() -> Canned {
    Canned {
        model: "m".into(),
        text: Some("Hello there, world".into()),
        tool_calls: vec![
            CannedCall {
                id: "tooluse_1".into(),
                name: "weather".into(),
                arguments: json!({"city": "Paris"}),
            },
            CannedCall {
                id: "tooluse_2".into(),
                name: "time".into(),
                arguments: json!({}),
            },
        ],
        finish: Finish::ToolUse,
        usage: CannedUsage {
            input: 30,
            output: 12,
            cached: 10,
            reasoning: 0,
        },
    }
}

#[test]
fn whole_answers_and_streams_have_bedrocks_shape() {
    let json = BedrockWire::converse_json(&canned());
    assert_eq!(json["stopReason"], "tool_use");
    assert_eq!(
        json["usage"],
        json!({"inputTokens": 20, "outputTokens": 12, "totalTokens": 42, "cacheReadInputTokens": 10})
    );
    assert_eq!(
        json["output"]["message"]["content"][1]["toolUse"]["name"],
        "weather"
    );

    let chunks = BedrockWire::stream_body(&BedrockWire::stream_events(&canned()));
    let mut decoder = EventStreamDecoder::default();
    let mut kinds = Vec::new();
    let mut arguments = String::new();
    for chunk in chunks {
        decoder.push(&chunk);
        while let Some(m) = decoder.next_message().unwrap() {
            assert_eq!(m.header_str(MESSAGE_TYPE), Some("event"));
            let payload: Value = serde_json::from_slice(&m.payload).unwrap();
            if payload["contentBlockIndex"] == 1
                && let Some(input) = payload["delta"]["toolUse"]["input"].as_str()
            {
                arguments.push_str(input);
            }
            kinds.push(m.header_str(EVENT_TYPE).unwrap().to_owned());
        }
    }
    decoder.finish().unwrap();
    assert_eq!(kinds.first().map(String::as_str), Some("messageStart"));
    assert_eq!(kinds.last().map(String::as_str), Some("metadata"));
    assert_eq!(
        kinds.iter().filter(|k| *k == "contentBlockStart").count(),
        2
    );
    assert_eq!(arguments, r#"{"city":"Paris"}"#);
}

#[test]
fn errors_carry_their_type() {
    let wire = BedrockWire::default();
    for (error, status, kind) in [
        (CannedError::RateLimited, 429, "ThrottlingException"),
        (CannedError::Overloaded, 503, "ServiceUnavailableException"),
        (CannedError::ContextTooLong, 400, "ValidationException"),
        (CannedError::ContentFiltered, 400, "ValidationException"),
        (CannedError::Auth, 403, "AccessDeniedException"),
        (CannedError::BadRequest, 400, "ValidationException"),
        (CannedError::Server, 500, "InternalServerException"),
    ] {
        let Reply::WithHeaders(headers, reply) = wire.error(error) else {
            panic!("{error:?} has no headers")
        };
        let Reply::Json { status: s, body } = *reply else {
            panic!("{error:?} is not JSON")
        };
        assert_eq!(s, status, "{error:?}");
        assert!(body["message"].is_string());
        assert!(
            headers
                .iter()
                .any(|(n, v)| n == "x-amzn-errortype" && v.starts_with(&format!("{kind}:"))),
            "{error:?}"
        );
    }
}

#[test]
fn targets_decode_model_ids() {
    let t = Target::of(
        "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ainference-profile%2Fus.x/converse-stream",
    )
    .unwrap();
    assert_eq!(
        t.model,
        "arn:aws:bedrock:us-east-1:1:inference-profile/us.x"
    );
    assert_eq!(t.action, "converse-stream");
    assert!(Target::of("/v1/chat/completions").is_err());
    assert!(Target::of("/model/m/generate").is_err());
    assert!(Target::of("/model/%zz/converse").is_err());
}
