//! Stage `resolve`: the client's model name to a [`Route`], checking that the key may use it and
//! that the model serves the endpoint. The routing rules (`routing.rules`,
//! [`crate::routing::rules`]) may send the request to another configured model first.
//!
//! The key's model allow-list is checked against the name the client asked for, before any
//! rule: a rule is the operator's routing decision, so a key allowed `auto` may be routed to
//! whichever model a rule names for it, and a key that may not use a name learns nothing about
//! the rules for it. To keep a model from some callers, give its rule a `team` or `key_metadata`
//! condition (headers are the client's to choose).

use std::sync::Arc;

use http::HeaderMap;

use super::{ApiRequest, RequestCtx};
use crate::auth::Principal;
use crate::error::{AuthError, GatewayError};
use crate::provider::Operation;
use crate::routing::rules::{self, Facts};
use crate::runtime::{Route, Runtime};

/// The route of `model` for `op`, without routing rules.
pub fn resolve(
    runtime: &Runtime,
    principal: &Principal,
    model: &str,
    op: Operation,
) -> Result<Arc<Route>, GatewayError> {
    check_allowed(principal, model)?;
    find(runtime, model, op)
}

/// Stage `resolve` of a request: the allow-list, then the first routing rule that matches (it
/// names the model in `ctx.route` and itself in `ctx.rule`), else the model asked for.
pub fn resolve_request(
    runtime: &Runtime,
    principal: &Principal,
    headers: &HeaderMap,
    request: &ApiRequest,
    ctx: &mut RequestCtx,
) -> Result<Arc<Route>, GatewayError> {
    let (model, op) = (request.model(), request.op());
    check_allowed(principal, model)?;
    if !runtime.rules.is_empty() {
        let mut facts = Facts {
            principal,
            headers,
            request,
            ctx,
        };
        let usable = |target: &str| runtime.routes.get(target).is_some_and(|r| r.supports(op));
        if let Some(rule) = rules::first_match(&runtime.rules, &mut facts, usable)
            && let Some(route) = runtime.routes.get(&*rule.route)
        {
            ctx.rule = Some(rule.name.clone());
            ctx.route = Some(rule.route.clone());
            return Ok(route.clone());
        }
    }
    find(runtime, model, op)
}

/// Permission first: a key learns nothing about models outside its allow-list.
fn check_allowed(principal: &Principal, model: &str) -> Result<(), GatewayError> {
    if principal.may_use(model) {
        Ok(())
    } else {
        Err(AuthError::ModelNotAllowed(model.to_owned()).into())
    }
}

fn find(runtime: &Runtime, model: &str, op: Operation) -> Result<Arc<Route>, GatewayError> {
    let route = runtime
        .routes
        .get(model)
        .ok_or_else(|| GatewayError::ModelNotFound(model.to_owned()))?;
    if !route.supports(op) {
        return Err(GatewayError::EndpointNotSupported {
            model: model.to_owned(),
            endpoint: op.endpoint(),
        });
    }
    Ok(route.clone())
}
