//! Test support for Portcullis (a dev-dependency only): a scriptable mock OpenAI-compatible
//! upstream that records what the gateway sends, a chaos upstream that fails on a script
//! (statuses, resets, hangs, broken and slow streams), a harness that runs the real `portcullis`
//! binary on a temporary config and reads its logs, and a local OIDC identity provider (JWKS and
//! signed tokens).

pub mod chaos;
pub mod gateway;
pub mod oidc;
pub mod upstream;
pub mod wire;

pub use chaos::{Chaos, ChaosUpstream};
pub use gateway::GatewayProcess;
pub use upstream::{MockUpstream, Recorded, Reply, SseEnd};

/// A client key every test config accepts, and its SHA-256 as the config stores it.
pub const TEST_KEY: &str = "sk-test-key";
pub const TEST_KEY_SHA256: &str =
    "0d62f396c1317066f55a96086517047c737087c61eb2bf016b72e6298927b15b";
/// A second key, for configs that restrict a key to some models.
pub const LIMITED_KEY: &str = "sk-limited-key";
pub const LIMITED_KEY_SHA256: &str =
    "0aacba82431cb056ff40ca84b444f1ba641d6dd34615928c7113199965644872";

/// Whether tests that need a tool outside Rust (Python, Node) must run (`require`) or may skip.
pub fn required(var: &str) -> bool {
    std::env::var(var).is_ok_and(|v| v == "require")
}
