//! Stage `resolve`: the client's model name to a [`Route`], checking that the key may use it and
//! that the model serves the endpoint.

use std::sync::Arc;

use crate::auth::Principal;
use crate::error::{AuthError, GatewayError};
use crate::provider::Operation;
use crate::runtime::{Route, Runtime};

pub fn resolve(
    runtime: &Runtime,
    principal: &Principal,
    model: &str,
    op: Operation,
) -> Result<Arc<Route>, GatewayError> {
    // Permission first: a key learns nothing about models outside its allow-list.
    if !principal.may_use(model) {
        return Err(AuthError::ModelNotAllowed(model.to_owned()).into());
    }
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
