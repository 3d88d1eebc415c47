//! Stage `plan`: first the filter keeps the deployments of the route that can serve this
//! request, then the route's strategy orders them ([`plan`], called by dispatch).
//!
//! A deployment is kept when its provider serves the operation, its tags satisfy the model's
//! `require_tags`, and its model's capabilities ([`super::capabilities`]) accept what the
//! request needs ([`super::needs`]): images, tools, a `json_schema` response format, a stream,
//! its `max_tokens`, and its estimated prompt plus `max_tokens` within the context window. A
//! capability the catalog does not know constrains nothing. Only generating requests (chat,
//! completions, messages) are checked against capabilities; embeddings and count_tokens only
//! against the operation and the tags.
//!
//! The request path pays only for what some deployment of the route could refuse: the snapshot
//! computes each route's [`Constraints`] once, and a request reads only the needs they name.
//! The prompt's size is needed only when some deployment has a known context window, and then
//! the body's size bounds it ([`super::needs::prompt_bound`]); the prompt is tokenized only when
//! that bound does not fit the smallest window, and the figure is shared with stage `admit` (and
//! the routing rules) through the request's context, so a request is tokenized at most once.
//!
//! When the filter keeps nothing, the request is refused with a 400 that says why
//! ([`Ineligible`]).

use std::fmt;

use super::PlanInput;
use super::tags::TagPredicate;
use crate::error::GatewayError;
use crate::pipeline::{ApiRequest, RequestCtx};
use crate::provider::Operation;
use crate::runtime::{Deployment, Route, Runtime};
use crate::tokens::Estimate;

/// What could exclude a deployment of a route (other than its operation and tags), known when
/// the snapshot is built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Constraints {
    images: bool,
    tools: bool,
    json_schema: bool,
    streaming: bool,
    max_output: bool,
    /// The smallest known context window among the deployments.
    min_window: Option<u64>,
}

impl Constraints {
    /// What the capabilities of `deployments` could refuse.
    pub fn of(deployments: &[Deployment]) -> Self {
        let mut c = Self::default();
        for caps in deployments.iter().map(|d| d.capabilities) {
            c.images |= caps.vision == Some(false);
            c.tools |= caps.tools == Some(false);
            c.json_schema |= caps.json_schema == Some(false);
            c.streaming |= caps.streaming == Some(false);
            c.max_output |= caps.max_output_tokens.is_some();
            if let Some(w) = caps.context_window {
                c.min_window = Some(c.min_window.map_or(w, |m| m.min(w)));
            }
        }
        c
    }
}

/// What a request needs, as far as its route's constraints ask.
#[derive(Debug, Clone, Copy, Default)]
struct Wants {
    images: bool,
    tools: bool,
    json_schema: bool,
    stream: bool,
    output: Option<u64>,
    /// The estimated prompt; `None` when it fits every known window (or none is known).
    prompt: Option<u64>,
}

impl Wants {
    fn of(c: &Constraints, request: &ApiRequest, body_bytes: usize, ctx: &mut RequestCtx) -> Self {
        use super::needs;
        if !matches!(
            request.op(),
            Operation::Chat | Operation::Completion | Operation::Messages
        ) {
            return Self::default();
        }
        let output = needs::requested_output(request);
        let prompt = c.min_window.and_then(|smallest| {
            if let Some(known) = ctx.prompt_estimate {
                return Some(known);
            }
            match needs::prompt_bound(request, body_bytes) {
                Some(bound) if bound.saturating_add(output.unwrap_or(0)) <= smallest => None,
                _ => Some(ctx.prompt_tokens(request)),
            }
        });
        Self {
            images: c.images && needs::has_images(request),
            tools: c.tools && needs::has_tools(request),
            json_schema: c.json_schema && needs::wants_json_schema(request),
            stream: c.streaming && request.is_stream(),
            output: output.filter(|_| c.max_output || prompt.is_some()),
            prompt,
        }
    }
}

/// Why a deployment cannot serve a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Its tags do not satisfy the model's `require_tags`.
    Tags,
    Images,
    Tools,
    JsonSchema,
    Streaming,
    /// The request's `max_tokens` is above the model's largest output.
    Output {
        max: u64,
    },
    /// The estimated prompt plus `max_tokens` exceeds the context window.
    Context {
        window: u64,
    },
}

impl Refusal {
    /// Why `d` cannot serve a request that `wants` this, if it cannot.
    fn of(d: &Deployment, tags: Option<&TagPredicate>, w: &Wants) -> Option<Self> {
        let c = &d.capabilities;
        let lacks = |need: bool, can: Option<bool>| need && can == Some(false);
        Some(if tags.is_some_and(|t| !t.admits(&d.tags)) {
            Self::Tags
        } else if lacks(w.images, c.vision) {
            Self::Images
        } else if lacks(w.tools, c.tools) {
            Self::Tools
        } else if lacks(w.json_schema, c.json_schema) {
            Self::JsonSchema
        } else if lacks(w.stream, c.streaming) {
            Self::Streaming
        } else if let (Some(out), Some(max)) = (w.output, c.max_output_tokens)
            && out > max
        {
            Self::Output { max }
        } else if let (Some(prompt), Some(window)) = (w.prompt, c.context_window)
            && prompt.saturating_add(w.output.unwrap_or(0)) > window
        {
            Self::Context { window }
        } else {
            return None;
        })
    }

    fn same_kind(self, other: Self) -> bool {
        std::mem::discriminant(&self) == std::mem::discriminant(&other)
    }

    /// The reason in a list of deployments (`prompt`: how the prompt reads in a message).
    fn short(self, prompt: &str) -> String {
        match self {
            Self::Tags => "lacks the tags the model requires".into(),
            Self::Images => "accepts no images".into(),
            Self::Tools => "accepts no tools".into(),
            Self::JsonSchema => "accepts no json_schema response_format".into(),
            Self::Streaming => "does not stream".into(),
            Self::Output { max } => format!("writes at most {max} tokens"),
            Self::Context { window } => {
                format!("has a context window of {window} tokens, less than {prompt}")
            }
        }
    }
}

/// No deployment of a model can serve a request: the 400 the client gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ineligible {
    /// The model (route) name.
    pub model: String,
    pub prompt: Option<u64>,
    pub output: Option<u64>,
    /// Each deployment set aside (`provider/upstream model`, as `x-portcullis-deployment` names
    /// it) and why.
    pub refused: Vec<(String, Refusal)>,
}

impl Ineligible {
    /// The reason every deployment shares, if they share one.
    fn common(&self) -> Option<Refusal> {
        let first = self.refused.first()?.1;
        self.refused
            .iter()
            .all(|(_, r)| r.same_kind(first))
            .then_some(first)
    }

    /// The error's code: OpenAI's `context_length_exceeded` when the prompt is what fits
    /// nowhere, so clients that handle it do.
    pub fn kind(&self) -> &'static str {
        match self.common() {
            Some(Refusal::Context { .. }) => "context_length_exceeded",
            _ => "no_eligible_deployment",
        }
    }

    /// The request field at fault, when one is.
    pub fn param(&self) -> Option<&'static str> {
        Some(match self.common()? {
            Refusal::Images | Refusal::Context { .. } => "messages",
            Refusal::Tools => "tools",
            Refusal::JsonSchema => "response_format",
            Refusal::Streaming => "stream",
            Refusal::Output { .. } => "max_tokens",
            Refusal::Tags => return None,
        })
    }

    fn largest(&self, of: impl Fn(Refusal) -> Option<u64>) -> u64 {
        self.refused
            .iter()
            .filter_map(|(_, r)| of(*r))
            .max()
            .unwrap_or(0)
    }

    fn prompt_text(&self) -> String {
        let prompt = self.prompt.unwrap_or(0);
        match self.output {
            Some(out) => format!("the prompt (~{prompt} tokens) plus max_tokens ({out})"),
            None => format!("the prompt (~{prompt} tokens)"),
        }
    }
}

impl fmt::Display for Ineligible {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = &self.model;
        match self.common() {
            Some(Refusal::Images) => write!(f, "no deployment of model '{m}' accepts images"),
            Some(Refusal::Tools) => write!(f, "no deployment of model '{m}' accepts tools"),
            Some(Refusal::JsonSchema) => write!(
                f,
                "no deployment of model '{m}' accepts response_format json_schema"
            ),
            Some(Refusal::Streaming) => write!(
                f,
                "no deployment of model '{m}' can stream; send the request without stream: true"
            ),
            Some(Refusal::Tags) => {
                write!(
                    f,
                    "no deployment of model '{m}' has the tags the model requires"
                )
            }
            Some(Refusal::Output { .. }) => write!(
                f,
                "max_tokens ({}) is more than any deployment of model '{m}' can write (at most \
                 {} tokens)",
                self.output.unwrap_or(0),
                self.largest(|r| match r {
                    Refusal::Output { max } => Some(max),
                    _ => None,
                })
            ),
            Some(Refusal::Context { .. }) => write!(
                f,
                "{} exceeds the context window of every deployment of model '{m}' (the largest \
                 is {} tokens)",
                self.prompt_text(),
                self.largest(|r| match r {
                    Refusal::Context { window } => Some(window),
                    _ => None,
                })
            ),
            None => {
                write!(f, "no deployment of model '{m}' can serve this request:")?;
                let prompt = self.prompt_text();
                for (i, (name, r)) in self.refused.iter().enumerate() {
                    let sep = if i == 0 { " " } else { "; " };
                    write!(f, "{sep}{name} {}", r.short(&prompt))?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for Ineligible {}

/// The deployments of `route` that can serve `request`, in the config's order; `body_bytes`
/// is the size of the request's body. The prompt estimate, when one is needed, is read from and
/// kept in `ctx`.
pub fn eligible(
    route: &Route,
    request: &ApiRequest,
    body_bytes: usize,
    ctx: &mut RequestCtx,
) -> Result<Vec<usize>, Ineligible> {
    let op = request.op();
    let wants = Wants::of(&route.constraints, request, body_bytes, ctx);
    let tags = route.require_tags.as_ref();
    let mut kept = Vec::with_capacity(route.deployments.len());
    let mut refused = Vec::new();
    for (i, d) in route.deployments.iter().enumerate() {
        if !d.serves(op) {
            continue;
        }
        match Refusal::of(d, tags, &wants) {
            None => kept.push(i),
            Some(r) => refused.push((format!("{}/{}", d.provider_name, d.upstream_model), r)),
        }
    }
    if kept.is_empty() && !refused.is_empty() {
        return Err(Ineligible {
            model: route.name.clone(),
            prompt: wants.prompt,
            output: wants.output,
            refused,
        });
    }
    Ok(kept)
}

/// Stage `plan`: the eligible deployments of `route`, in the order its strategy gives.
pub fn plan(
    runtime: &Runtime,
    route: &Route,
    request: &ApiRequest,
    ctx: &mut RequestCtx,
) -> Result<Vec<usize>, GatewayError> {
    let candidates = eligible(route, request, ctx.body_bytes, ctx)
        .map_err(|e| GatewayError::NoDeployment(Box::new(e)))?;
    let estimate = if route.strategy.needs_estimate() {
        Estimate {
            prompt: ctx.prompt_tokens(request),
            output: crate::tokens::reserved_output(request, runtime.quotas.default_max_tokens),
        }
    } else {
        Estimate::default()
    };
    let input = PlanInput {
        stream: request.is_stream(),
        estimate,
        pricing: &runtime.pricing,
    };
    Ok(route.strategy.plan(&route.deployments, candidates, &input))
}

#[cfg(test)]
mod tests;
