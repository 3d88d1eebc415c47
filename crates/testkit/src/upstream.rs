//! A mock OpenAI-compatible upstream on 127.0.0.1 (port 0). Each request is recorded, then
//! answered by a handler the test supplies (or [`openai_reply`], which behaves like OpenAI's
//! chat, completions and embeddings endpoints). It counts requests whose answer was abandoned
//! before it was complete, which is how tests see that the gateway cancelled an upstream call.
//! Each connection is served by hyper on a socket the mock keeps a handle to, so a reply can
//! also be no reply at all: [`Reply::Reset`] resets the connection (TCP RST).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::{Extension, Router};
use futures_util::StreamExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// One request the mock received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// The query string without `?` (empty when there is none).
    pub query: String,
    /// Header names in lower case.
    pub headers: HashMap<String, String>,
    /// The body as JSON (`Null` when it is not JSON).
    pub body: Value,
    /// The body as received (signature checks need the exact bytes).
    pub raw_body: Bytes,
}

/// How a streamed reply ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SseEnd {
    /// The body ends normally.
    Close,
    /// The connection is cut mid-body (a truncated stream).
    Abort,
    /// The body stays open and silent.
    Hang,
}

/// What the mock answers.
#[derive(Debug, Clone)]
pub enum Reply {
    Json {
        status: u16,
        body: Value,
    },
    Raw {
        status: u16,
        content_type: &'static str,
        body: String,
    },
    /// SSE `data:` payloads, sent one by one with `delay` before each.
    Sse {
        events: Vec<String>,
        delay: Duration,
        end: SseEnd,
    },
    /// A streamed body of pre-framed chunks (named SSE events, binary event-stream frames),
    /// sent one by one with `delay` before each.
    Stream {
        status: u16,
        content_type: &'static str,
        chunks: Vec<Bytes>,
        delay: Duration,
        end: SseEnd,
    },
    Delay(Duration, Box<Reply>),
    /// The reply with these headers added (error types, request ids).
    WithHeaders(Vec<(String, String)>, Box<Reply>),
    /// Never answers.
    Hang,
    /// No HTTP answer: the connection is reset (TCP RST) once the request is read.
    Reset,
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Self {
        Self::Json { status, body }
    }

    pub fn error(status: u16, message: &str) -> Self {
        Self::json(
            status,
            json!({"error": {"message": message, "type": "server_error", "param": null, "code": null}}),
        )
    }

    /// A chat stream of `texts` (the first chunk also carries the assistant role), 1 ms apart,
    /// ending as `end` says, with no `[DONE]`.
    pub fn chat_stream(texts: &[&str], end: SseEnd) -> Self {
        Self::Sse {
            events: chat_events("m", texts),
            delay: Duration::from_millis(1),
            end,
        }
    }

    pub fn after(self, delay: Duration) -> Self {
        Self::Delay(delay, Box::new(self))
    }

    /// This reply with the header `name: value` added.
    pub fn with_header(self, name: &str, value: &str) -> Self {
        match self {
            Self::WithHeaders(mut headers, reply) => {
                headers.push((name.to_owned(), value.to_owned()));
                Self::WithHeaders(headers, reply)
            }
            other => Self::WithHeaders(vec![(name.to_owned(), value.to_owned())], Box::new(other)),
        }
    }
}

type Handler = Arc<dyn Fn(&Recorded) -> Reply + Send + Sync>;

/// Resets the connection a request came on; each connection's requests carry its own.
#[derive(Clone)]
struct ConnectionReset(Arc<Notify>);

#[derive(Clone)]
struct Shared {
    handler: Handler,
    requests: Arc<Mutex<Vec<Recorded>>>,
    abandoned: Arc<AtomicUsize>,
}

/// The running mock; it stops when dropped.
#[derive(Debug)]
pub struct MockUpstream {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<Recorded>>>,
    abandoned: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for MockUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MockUpstream {
    /// A mock that behaves like OpenAI.
    pub async fn openai() -> anyhow::Result<Self> {
        Self::start(openai_reply).await
    }

    /// A mock answering with `handler`.
    pub async fn start(
        handler: impl Fn(&Recorded) -> Reply + Send + Sync + 'static,
    ) -> anyhow::Result<Self> {
        let shared = Shared {
            handler: Arc::new(handler),
            requests: Arc::default(),
            abandoned: Arc::default(),
        };
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve_connection(stream, app.clone()));
            }
        });
        Ok(Self {
            addr,
            requests: shared.requests,
            abandoned: shared.abandoned,
            task,
        })
    }

    /// `http://127.0.0.1:PORT/v1`, the base URL to configure.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }

    pub fn count(&self) -> usize {
        self.requests.lock().map(|r| r.len()).unwrap_or_default()
    }

    /// Requests whose reply was dropped before it was complete (the caller went away).
    pub fn abandoned(&self) -> usize {
        self.abandoned.load(Ordering::SeqCst)
    }
}

/// Serves one connection with `app` until it ends, or until a reply resets it: then the socket
/// is closed with `SO_LINGER` 0, which sends a TCP RST instead of a FIN.
async fn serve_connection(stream: TcpStream, app: Router) {
    // A second handle to the socket, kept out of hyper's hands, to set the linger on.
    let Ok((stream, twin)) = stream.into_std().and_then(|s| {
        let twin = s.try_clone()?;
        Ok((TcpStream::from_std(s)?, TcpStream::from_std(twin)?))
    }) else {
        return;
    };
    let reset = Arc::new(Notify::new());
    let service = TowerToHyperService::new(app.layer(Extension(ConnectionReset(reset.clone()))));
    let builder = auto::Builder::new(TokioExecutor::new());
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        _ = connection => {}
        () = reset.notified() => {
            // Both handles close when this returns; the last close sends the RST.
            let _ = twin.set_zero_linger();
        }
    }
}

/// Counts an abandoned reply unless disarmed.
struct Abandon(Option<Arc<AtomicUsize>>);

impl Abandon {
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for Abandon {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            c.fetch_add(1, Ordering::SeqCst);
        }
    }
}

async fn handle(State(shared): State<Shared>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let recorded = Recorded {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    v.to_str().unwrap_or_default().to_owned(),
                )
            })
            .collect(),
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        raw_body: bytes,
    };
    let reply = (shared.handler)(&recorded);
    if let Ok(mut r) = shared.requests.lock() {
        r.push(recorded);
    }
    let mut guard = Abandon(Some(shared.abandoned.clone()));
    let reset = parts.extensions.get::<ConnectionReset>().cloned();
    render(reply, &mut guard, reset).await
}

async fn render(mut reply: Reply, guard: &mut Abandon, reset: Option<ConnectionReset>) -> Response {
    let mut extra: Vec<(String, String)> = Vec::new();
    let respond = |status, content_type, body, extra: &[(String, String)]| {
        let mut r = respond(status, content_type, body);
        for (name, value) in extra {
            if let (Ok(n), Ok(v)) = (
                header::HeaderName::try_from(name.as_str()),
                HeaderValue::try_from(value.as_str()),
            ) {
                r.headers_mut().append(n, v);
            }
        }
        r
    };
    loop {
        match reply {
            Reply::WithHeaders(headers, next) => {
                extra.extend(headers);
                reply = *next;
            }
            Reply::Delay(d, next) => {
                tokio::time::sleep(d).await;
                reply = *next;
            }
            Reply::Hang => std::future::pending::<()>().await,
            Reply::Reset => {
                // The reset is the reply: the connection ends without one, as planned.
                guard.disarm();
                if let Some(ConnectionReset(reset)) = &reset {
                    reset.notify_one();
                }
                std::future::pending::<()>().await;
            }
            Reply::Json { status, body } => {
                guard.disarm();
                return respond(
                    status,
                    "application/json",
                    Body::from(body.to_string()),
                    &extra,
                );
            }
            Reply::Raw {
                status,
                content_type,
                body,
            } => {
                guard.disarm();
                return respond(status, content_type, Body::from(body), &extra);
            }
            Reply::Sse { events, delay, end } => {
                let chunks = events
                    .into_iter()
                    .map(|e| Bytes::from(format!("data: {e}\n\n")))
                    .collect();
                reply = Reply::Stream {
                    status: 200,
                    content_type: "text/event-stream",
                    chunks,
                    delay,
                    end,
                };
            }
            Reply::Stream {
                status,
                content_type,
                chunks,
                delay,
                end,
            } => {
                let mut stream_guard = Abandon(guard.0.take());
                let s = futures_util::stream::iter(chunks)
                    .then(move |chunk| async move {
                        tokio::time::sleep(delay).await;
                        Ok::<_, std::io::Error>(chunk)
                    })
                    .chain(futures_util::stream::once(async move {
                        match end {
                            SseEnd::Close => {
                                stream_guard.disarm();
                                Ok(Bytes::new())
                            }
                            SseEnd::Abort => {
                                // Let the events before the cut reach the wire first.
                                tokio::time::sleep(Duration::from_millis(50)).await;
                                stream_guard.disarm();
                                Err(std::io::Error::other("cut"))
                            }
                            SseEnd::Hang => {
                                let _keep = stream_guard;
                                std::future::pending::<Result<Bytes, std::io::Error>>().await
                            }
                        }
                    }));
                return respond(status, content_type, Body::from_stream(s), &extra);
            }
        }
    }
}

fn respond(status: u16, content_type: &'static str, body: Body) -> Response {
    let mut r = Response::new(body);
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// The model name the request carried.
pub(crate) fn model_of(r: &Recorded) -> String {
    r.body["model"].as_str().unwrap_or_default().to_owned()
}

/// A chat chunk in OpenAI's format.
pub fn chat_chunk(
    model: &str,
    delta: Value,
    finish: Option<&str>,
    with_usage_field: bool,
) -> String {
    let mut c = json!({
        "id": "chatcmpl-upstream", "object": "chat.completion.chunk", "created": 1_700_000_000,
        "model": model, "system_fingerprint": "fp_mock",
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
    });
    if with_usage_field {
        c["usage"] = Value::Null;
    }
    c.to_string()
}

/// The chunks of a chat stream of `texts` for `model`: the first one also carries the
/// assistant role; none has a finish reason.
pub fn chat_events(model: &str, texts: &[&str]) -> Vec<String> {
    texts
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let delta = if i == 0 {
                json!({"role": "assistant", "content": text})
            } else {
                json!({"content": text})
            };
            chat_chunk(model, delta, None, true)
        })
        .collect()
}

/// A stream of `events`, then the usage chunk (when the client asked for it) and `[DONE]`.
fn stream_reply(mut events: Vec<String>, usage_chunk: Option<Value>) -> Reply {
    events.extend(usage_chunk.map(|c| c.to_string()));
    events.push("[DONE]".into());
    Reply::Sse {
        events,
        delay: Duration::from_millis(5),
        end: SseEnd::Close,
    }
}

/// Behaves like OpenAI for chat (JSON and SSE, with the usage chunk only when asked for),
/// completions and embeddings. The answer text is always "Hello world".
pub fn openai_reply(r: &Recorded) -> Reply {
    let model = model_of(r);
    let stream = r.body["stream"] == json!(true);
    let usage_asked = r.body["stream_options"]["include_usage"] == json!(true);
    let usage = json!({"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12});
    match r.path.as_str() {
        "/v1/chat/completions" if stream => {
            let events = vec![
                chat_chunk(
                    &model,
                    json!({"role": "assistant", "content": ""}),
                    None,
                    usage_asked,
                ),
                chat_chunk(&model, json!({"content": "Hello"}), None, usage_asked),
                chat_chunk(&model, json!({"content": " world"}), None, usage_asked),
                chat_chunk(&model, json!({}), Some("stop"), usage_asked),
            ];
            let usage_chunk = json!({"id": "chatcmpl-upstream", "object": "chat.completion.chunk",
                "created": 1_700_000_000, "model": model, "choices": [], "usage": usage});
            stream_reply(events, usage_asked.then_some(usage_chunk))
        }
        "/v1/chat/completions" => Reply::json(
            200,
            json!({
                "id": "chatcmpl-upstream", "object": "chat.completion", "created": 1_700_000_000,
                "model": model, "system_fingerprint": "fp_mock",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello world",
                    "refusal": null}, "logprobs": null, "finish_reason": "stop"}],
                "usage": usage, "service_tier": "default", "x_vendor_extension": {"kept": true},
            }),
        ),
        "/v1/completions" if stream => {
            let chunk = |text: &str, finish: Value| {
                json!({"id": "cmpl-upstream", "object": "text_completion", "created": 1_700_000_000,
                    "model": model, "choices": [{"index": 0, "text": text, "logprobs": null,
                    "finish_reason": finish}]})
                .to_string()
            };
            let events = vec![chunk("Hello", Value::Null), chunk(" world", json!("stop"))];
            let usage_chunk = json!({"id": "cmpl-upstream", "object": "text_completion",
                "created": 1_700_000_000, "model": model, "choices": [], "usage": usage});
            stream_reply(events, usage_asked.then_some(usage_chunk))
        }
        "/v1/completions" => Reply::json(
            200,
            json!({"id": "cmpl-upstream", "object": "text_completion", "created": 1_700_000_000,
                "model": model, "choices": [{"index": 0, "text": "Hello world", "logprobs": null,
                "finish_reason": "stop"}], "usage": usage}),
        ),
        "/v1/embeddings" => {
            let n = r.body["input"].as_array().map_or(1, Vec::len);
            let data: Vec<Value> = (0..n)
                .map(|i| json!({"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]}))
                .collect();
            Reply::json(
                200,
                json!({"object": "list", "data": data, "model": model,
                    "usage": {"prompt_tokens": 4, "total_tokens": 4}}),
            )
        }
        _ => Reply::error(404, "no such route on the mock"),
    }
}
