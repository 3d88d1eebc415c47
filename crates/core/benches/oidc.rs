//! The cost of authenticating with an OIDC bearer token once the identity provider's key set
//! is cached (the steady state): JWT parsing, the signature check (RS256 or ES256) and the
//! claim checks and mapping. The key set is fetched once, before measuring, from a local JWKS
//! server (the testkit's TEST-ONLY keys).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "bench")]

use std::collections::HashMap;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis_core::oidc::{ClaimMapping, GatewayRole, OidcConfig, OidcVerifier};
use portcullis_core::provider::client;
use portcullis_testkit::oidc::{self, AUDIENCE, ISSUER, TestIdp, TestKey};
use serde_json::json;

fn oidc_verify(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let idp = rt
        .block_on(TestIdp::start(&[TestKey::Rsa1, TestKey::Ec]))
        .unwrap();
    let claims = ClaimMapping {
        org: Some("org".into()),
        team: Some("team".into()),
        role: "roles".into(),
        roles: HashMap::from([("dev".to_owned(), GatewayRole::Member)]),
    };
    let config = OidcConfig::new(ISSUER, AUDIENCE, idp.jwks_url(), claims);
    let http = client::build(Duration::from_secs(2)).unwrap();
    let verifier = OidcVerifier::new(config, http).unwrap();
    let mut token_claims = oidc::claims("ada");
    token_claims["roles"] = json!(["dev"]);
    token_claims["org"] = json!("acme");
    token_claims["team"] = json!("search");
    for (name, key) in [("rs256", TestKey::Rsa1), ("es256", TestKey::Ec)] {
        let token = key.sign(&token_claims).unwrap();
        // The first verification fetches the key set; the rest use the cache.
        rt.block_on(verifier.verify(&token)).unwrap();
        c.bench_function(&format!("oidc_verify_{name}_cached_jwks"), |b| {
            b.iter(|| rt.block_on(verifier.verify(&token)).unwrap())
        });
    }
    assert_eq!(idp.fetches(), 1, "the key set is fetched once");
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = oidc_verify
}
criterion_main!(benches);
