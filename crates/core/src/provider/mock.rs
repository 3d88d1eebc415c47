//! The built-in `mock` provider: deterministic answers generated in-process, with configurable
//! latency, length and chunking, and no network. It exists for offline trials, demos and load
//! tests of the gateway itself; it is not a model and says nothing meaningful. The same request
//! always gets the same words; usage counts one token per generated word and estimates prompt
//! tokens as characters / 4.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::stream;
use portcullis_types::Usage;
use portcullis_types::openai::{
    AssistantMessage, ChatChoice, ChatCompletion, ChatCompletionChunk, ChunkChoice, Delta,
    Embedding, EmbeddingResponse, EmbeddingUsage, EmbeddingVector, TextChoice, TextCompletion,
};
use serde::Serialize;
use serde_json::Value;

use super::{EventStream, Operation, Provider, ProviderError, ProviderResponse, StreamEvent};
use crate::config::MockConfig;
use crate::pipeline::ApiRequest;

const WORDS: &[&str] = &[
    "the", "gate", "opens", "for", "every", "model", "and", "each", "token", "passes", "through",
    "quietly", "while", "keys", "stay", "inside", "mock", "reply", "with", "care",
];

#[derive(Debug)]
pub struct MockProvider {
    config: MockConfig,
}

impl MockProvider {
    pub fn new(config: MockConfig) -> Self {
        Self { config }
    }
}

/// What the mock derives from one request.
struct Plan {
    seed: u64,
    model: String,
    prompt_tokens: u64,
    words: Vec<&'static str>,
    truncated: bool,
}

impl Plan {
    fn new(config: &MockConfig, model: &str, prompt: &str, max_tokens: Option<u64>) -> Self {
        let seed = fnv1a(prompt.as_bytes()) ^ fnv1a(model.as_bytes()).rotate_left(17);
        let wanted = u64::from(config.completion_tokens);
        let n = max_tokens.map_or(wanted, |m| m.min(wanted));
        let mut rng = seed | 1;
        let words = (0..n)
            .map(|_| WORDS[(xorshift(&mut rng) % WORDS.len() as u64) as usize])
            .collect();
        Self {
            seed,
            model: model.to_owned(),
            prompt_tokens: (prompt.chars().count() as u64).div_ceil(4).max(1),
            words,
            truncated: n < wanted,
        }
    }

    fn usage(&self) -> Usage {
        Usage::new(self.prompt_tokens, self.words.len() as u64)
    }

    fn finish_reason(&self) -> String {
        if self.truncated { "length" } else { "stop" }.to_owned()
    }

    fn id(&self, prefix: &str) -> String {
        format!("{prefix}-mock-{:016x}", self.seed)
    }
}

/// The next value of a xorshift64 sequence (deterministic filler, not randomness).
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn parse_raw(raw: &serde_json::value::RawValue) -> Value {
    serde_json::from_str(raw.get()).unwrap_or(Value::Null)
}

/// The text of a message content, a prompt or an input: strings, and the `text` of parts.
fn collect_text(value: &Value, out: &mut String) {
    match value {
        Value::String(s) => {
            out.push_str(s);
            out.push('\n');
        }
        Value::Array(items) => items.iter().for_each(|v| collect_text(v, out)),
        Value::Object(map) => {
            if let Some(t) = map.get("text") {
                collect_text(t, out);
            }
        }
        _ => {}
    }
}

fn json<T: Serialize>(value: &T) -> Result<Bytes, ProviderError> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|e| ProviderError::InvalidResponse(e.to_string()))
}

#[async_trait::async_trait]
impl Provider for MockProvider {
    fn kind(&self) -> &'static str {
        "mock"
    }

    fn supports(&self, op: Operation) -> bool {
        // Anthropic's messages reach it through the chat translation, like any chat provider.
        matches!(
            op,
            Operation::Chat | Operation::Completion | Operation::Embedding
        )
    }

    async fn call(
        &self,
        op: Operation,
        request: &ApiRequest,
        stream: bool,
    ) -> Result<ProviderResponse, ProviderError> {
        if !self.config.latency.is_zero() {
            tokio::time::sleep(self.config.latency).await;
        }
        match (op, request) {
            (Operation::Chat, ApiRequest::Chat(r)) => {
                let mut prompt = String::new();
                if let Value::Array(messages) = parse_raw(&r.messages) {
                    for m in &messages {
                        collect_text(&m["content"], &mut prompt);
                    }
                }
                let plan = Plan::new(
                    &self.config,
                    &r.model,
                    &prompt,
                    r.max_completion_tokens.or(r.max_tokens),
                );
                if stream {
                    Ok(ProviderResponse::Stream(self.chat_stream(plan)))
                } else {
                    let body = json(&ChatCompletion {
                        id: plan.id("chatcmpl"),
                        object: "chat.completion".into(),
                        created: now(),
                        model: plan.model.clone(),
                        choices: vec![ChatChoice {
                            index: 0,
                            message: AssistantMessage {
                                role: "assistant".into(),
                                content: plan.words.join(" "),
                            },
                            finish_reason: plan.finish_reason(),
                        }],
                        usage: plan.usage(),
                    })?;
                    Ok(complete(body, plan.usage()))
                }
            }
            (Operation::Completion, ApiRequest::Completion(r)) => {
                let mut prompt = String::new();
                collect_text(&parse_raw(&r.prompt), &mut prompt);
                let plan = Plan::new(&self.config, &r.model, &prompt, r.max_tokens);
                if stream {
                    Ok(ProviderResponse::Stream(self.text_stream(plan)))
                } else {
                    let body = json(&text_completion(
                        &plan,
                        plan.words.join(" "),
                        Some(plan.finish_reason()),
                        Some(plan.usage()),
                    ))?;
                    Ok(complete(body, plan.usage()))
                }
            }
            (Operation::Embedding, ApiRequest::Embedding(r)) => {
                let inputs: Vec<String> = match &parse_raw(&r.input) {
                    Value::Array(items) => items.iter().map(Value::to_string).collect(),
                    other => vec![other.to_string()],
                };
                let dims = self.config.embedding_dimensions as usize;
                let base64 =
                    r.extra.get_as::<String>("encoding_format").as_deref() == Some("base64");
                let data = inputs
                    .iter()
                    .enumerate()
                    .map(|(i, text)| {
                        let v = vector(fnv1a(text.as_bytes()), dims);
                        Embedding {
                            object: "embedding".into(),
                            index: i as u32,
                            embedding: if base64 {
                                EmbeddingVector::Base64(encode_f32_base64(&v))
                            } else {
                                EmbeddingVector::Float(v)
                            },
                        }
                    })
                    .collect();
                let chars: usize = inputs.iter().map(|s| s.chars().count()).sum();
                let usage = Usage::new((chars as u64).div_ceil(4).max(1), 0);
                let body = json(&EmbeddingResponse {
                    object: "list".into(),
                    data,
                    model: r.model.clone(),
                    usage: EmbeddingUsage {
                        prompt_tokens: usage.prompt_tokens,
                        total_tokens: usage.total_tokens,
                    },
                })?;
                Ok(complete(body, usage))
            }
            _ => Err(ProviderError::InvalidResponse(
                "operation and request disagree".into(),
            )),
        }
    }
}

fn complete(body: Bytes, usage: Usage) -> ProviderResponse {
    ProviderResponse::Complete {
        body,
        usage: Some(usage),
    }
}

/// Base64 of the little-endian bytes of `v`, as OpenAI encodes `encoding_format: "base64"`.
fn encode_f32_base64(v: &[f32]) -> String {
    use base64::Engine as _;
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A unit vector derived from `seed`.
fn vector(seed: u64, dims: usize) -> Vec<f32> {
    let mut rng = seed | 1;
    let raw: Vec<f32> = (0..dims)
        .map(|_| (xorshift(&mut rng) % 2001) as f32 / 1000.0 - 1.0)
        .collect();
    let norm = raw
        .iter()
        .map(|x| x * x)
        .sum::<f32>()
        .sqrt()
        .max(f32::EPSILON);
    raw.into_iter().map(|x| x / norm).collect()
}

fn text_completion(
    plan: &Plan,
    text: String,
    finish_reason: Option<String>,
    usage: Option<Usage>,
) -> TextCompletion {
    TextCompletion {
        id: plan.id("cmpl"),
        object: "text_completion".into(),
        created: now(),
        model: plan.model.clone(),
        choices: if usage.is_some() && finish_reason.is_none() {
            Vec::new()
        } else {
            vec![TextChoice {
                index: 0,
                text,
                finish_reason,
            }]
        },
        usage,
    }
}

impl MockProvider {
    /// The events of a stream: built up front (they are small), sent with the configured delay
    /// before each content chunk.
    fn paced(&self, events: Vec<(bool, Result<Bytes, ProviderError>)>) -> EventStream {
        let delay = self.config.chunk_delay;
        Box::pin(stream::unfold(
            events.into_iter(),
            move |mut it| async move {
                let (paced, item) = it.next()?;
                if paced && delay > Duration::ZERO {
                    tokio::time::sleep(delay).await;
                }
                Some((item.map(StreamEvent::data), it))
            },
        ))
    }

    fn chunks<'a>(&self, plan: &'a Plan) -> impl Iterator<Item = String> + 'a {
        let per = self.config.chunk_tokens.max(1) as usize;
        plan.words.chunks(per).enumerate().map(|(i, words)| {
            let text = words.join(" ");
            if i == 0 { text } else { format!(" {text}") }
        })
    }

    fn chat_stream(&self, plan: Plan) -> EventStream {
        let chunk = |delta: Delta, finish: Option<String>, usage: Option<Usage>| {
            json(&ChatCompletionChunk {
                id: plan.id("chatcmpl"),
                object: "chat.completion.chunk".into(),
                created: now(),
                model: plan.model.clone(),
                choices: if usage.is_some() {
                    Vec::new()
                } else {
                    vec![ChunkChoice {
                        index: 0,
                        delta,
                        finish_reason: finish,
                    }]
                },
                usage,
            })
        };
        let mut events = vec![(
            false,
            chunk(
                Delta {
                    role: Some("assistant".into()),
                    content: Some(String::new()),
                },
                None,
                None,
            ),
        )];
        for text in self.chunks(&plan) {
            let delta = Delta {
                role: None,
                content: Some(text),
            };
            events.push((true, chunk(delta, None, None)));
        }
        events.push((
            false,
            chunk(Delta::default(), Some(plan.finish_reason()), None),
        ));
        events.push((false, chunk(Delta::default(), None, Some(plan.usage()))));
        events.push((false, Ok(Bytes::from_static(b"[DONE]"))));
        self.paced(events)
    }

    fn text_stream(&self, plan: Plan) -> EventStream {
        let mut events: Vec<_> = self
            .chunks(&plan)
            .map(|text| (true, json(&text_completion(&plan, text, None, None))))
            .collect();
        let finish = text_completion(&plan, String::new(), Some(plan.finish_reason()), None);
        events.push((false, json(&finish)));
        let usage = text_completion(&plan, String::new(), None, Some(plan.usage()));
        events.push((false, json(&usage)));
        events.push((false, Ok(Bytes::from_static(b"[DONE]"))));
        self.paced(events)
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;

    use super::*;
    use crate::pipeline::parse::parse;

    fn mock(tokens: u32, chunk_tokens: u32) -> MockProvider {
        MockProvider::new(MockConfig {
            completion_tokens: tokens,
            chunk_tokens,
            ..MockConfig::default()
        })
    }

    async fn call(p: &MockProvider, op: Operation, req: &str, stream: bool) -> ProviderResponse {
        let request = parse(op, req.as_bytes()).unwrap();
        p.call(op, &request, stream).await.unwrap()
    }

    #[tokio::test]
    async fn chat_is_deterministic_and_counts_usage() {
        let p = mock(5, 1);
        let req = r#"{"model":"m","messages":[{"role":"user","content":"hello there"}]}"#;
        let (
            ProviderResponse::Complete { body: a, usage },
            ProviderResponse::Complete { body: b, .. },
        ) = (
            call(&p, Operation::Chat, req, false).await,
            call(&p, Operation::Chat, req, false).await,
        )
        else {
            panic!("expected complete bodies")
        };
        let va: Value = serde_json::from_slice(&a).unwrap();
        let vb: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(va["choices"], vb["choices"]);
        assert_eq!(usage, Some(Usage::new(3, 5)));
        let text = va["choices"][0]["message"]["content"].as_str().unwrap();
        assert_eq!(text.split(' ').count(), 5);
    }

    #[tokio::test]
    async fn chat_stream_chunks_and_usage() {
        let p = mock(5, 2);
        let req = r#"{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":4,"stream":true}"#;
        let ProviderResponse::Stream(s) = call(&p, Operation::Chat, req, true).await else {
            panic!("expected a stream")
        };
        let events: Vec<_> = s.map(|e| e.unwrap().data).collect().await;
        // role, 2 content chunks (4 tokens by 2), finish, usage, [DONE]
        assert_eq!(events.len(), 6);
        let finish: Value = serde_json::from_slice(&events[3]).unwrap();
        assert_eq!(finish["choices"][0]["finish_reason"], "length");
        let usage: Value = serde_json::from_slice(&events[4]).unwrap();
        assert_eq!(usage["usage"]["completion_tokens"], 4);
        assert_eq!(usage["choices"], serde_json::json!([]));
        assert_eq!(&events[5][..], b"[DONE]");
    }

    #[tokio::test]
    async fn embeddings_are_unit_vectors() {
        let p = mock(1, 1);
        let req = r#"{"model":"e","input":["a","b"]}"#;
        let ProviderResponse::Complete { body, .. } =
            call(&p, Operation::Embedding, req, false).await
        else {
            panic!("expected a body")
        };
        let v: Value = serde_json::from_slice(&body).unwrap();
        let data = v["data"].as_array().unwrap();
        assert_eq!(data.len(), 2);
        let e: Vec<f64> = serde_json::from_value(data[0]["embedding"].clone()).unwrap();
        assert_eq!(e.len(), 16);
        let norm: f64 = e.iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-3);
        assert!(v["usage"].get("completion_tokens").is_none());

        let req = r#"{"model":"e","input":"a","encoding_format":"base64"}"#;
        let ProviderResponse::Complete { body, .. } =
            call(&p, Operation::Embedding, req, false).await
        else {
            panic!("expected a body")
        };
        let v: Value = serde_json::from_slice(&body).unwrap();
        let encoded = v["data"][0]["embedding"].as_str().unwrap();
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap();
        assert_eq!(bytes.len(), 16 * 4);
    }
}
