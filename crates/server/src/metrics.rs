//! `GET /metrics`: the gateway's metrics in Prometheus's text format, from the `metrics` facade
//! (`metrics-exporter-prometheus`, without its HTTP listener: the gateway serves the page on
//! its own port). Metric names are `portcullis_<noun>_<unit>`; every one is listed in
//! docs/architecture.md. The page carries counts and low-cardinality labels only (policies,
//! periods, thresholds, dimensions), never keys, ids or content, so it is served without
//! authentication, as scrapers expect; keep the port off the public internet as for the
//! rest of the gateway's operations endpoints.

use axum::response::{IntoResponse, Response};
use http::header::CONTENT_TYPE;
use http::{HeaderValue, StatusCode};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Installs the process's metrics recorder; `None` (metrics off, with a warning) if another
/// recorder was installed first.
pub fn install() -> Option<PrometheusHandle> {
    match PrometheusBuilder::new().install_recorder() {
        Ok(handle) => Some(handle),
        Err(e) => {
            tracing::warn!(error = %e, "metrics are off: cannot install the recorder");
            None
        }
    }
}

/// The page.
pub fn render(handle: Option<&PrometheusHandle>) -> Response {
    let Some(handle) = handle else {
        return (StatusCode::NOT_FOUND, "metrics are off\n").into_response();
    };
    // Drains histograms' old buckets; cheap, and only scrapes pay for it.
    handle.run_upkeep();
    let mut response = handle.render().into_response();
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}
