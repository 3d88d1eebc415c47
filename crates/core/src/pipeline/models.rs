//! `GET /v1/models` and `GET /v1/models/{id}`: the models the calling key may use.

use bytes::Bytes;
use portcullis_types::models::{Model, ModelList};

use crate::auth::Principal;
use crate::error::GatewayError;
use crate::runtime::Runtime;

pub fn list(
    runtime: &Runtime,
    principal: &Principal,
    id: Option<&str>,
) -> Result<Bytes, GatewayError> {
    let to_model = |name: &str| Model::new(name, runtime.created, "portcullis");
    let body = match id {
        Some(id) => {
            if !principal.may_use(id) || !runtime.routes.contains_key(id) {
                return Err(GatewayError::ModelNotFound(id.to_owned()));
            }
            serde_json::to_vec(&to_model(id))
        }
        None => {
            let mut names: Vec<&str> = runtime
                .routes
                .keys()
                .map(String::as_str)
                .filter(|n| principal.may_use(n))
                .collect();
            names.sort_unstable();
            serde_json::to_vec(&ModelList::new(names.into_iter().map(to_model).collect()))
        }
    };
    body.map(Bytes::from)
        .map_err(|e| GatewayError::Internal(e.to_string()))
}
