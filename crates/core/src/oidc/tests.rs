//! Tokens signed with the TEST-ONLY keys of crates/testkit/fixtures, verified against a local
//! JWKS server whose key set the test changes and whose requests it counts.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use portcullis_testkit::{MockUpstream, Reply};
use serde_json::{Value, json};

use super::*;

const RSA1_PEM: &str = include_str!("../../../testkit/fixtures/TEST-ONLY-rsa-private.pem");
const RSA2_PEM: &str = include_str!("../../../testkit/fixtures/TEST-ONLY-rsa2-private.pem");
const EC_PEM: &str = include_str!("../../../testkit/fixtures/TEST-ONLY-ec-p256-private.pem");
const RSA1_JWK: &str = include_str!("../../../testkit/fixtures/TEST-ONLY-rsa.jwk.json");
const RSA2_JWK: &str = include_str!("../../../testkit/fixtures/TEST-ONLY-rsa2.jwk.json");
const EC_JWK: &str = include_str!("../../../testkit/fixtures/TEST-ONLY-ec-p256.jwk.json");

const ISSUER: &str = "https://idp.test.invalid/realms/portcullis";
const AUDIENCE: &str = "portcullis-gateway";

fn jwk(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

/// A local IdP: its JWKS (changeable), whether it is down, and the server.
struct Idp {
    keys: Arc<Mutex<Vec<Value>>>,
    down: Arc<Mutex<bool>>,
    server: MockUpstream,
}

impl Idp {
    async fn start(keys: Vec<Value>) -> Self {
        let keys = Arc::new(Mutex::new(keys));
        let down = Arc::new(Mutex::new(false));
        let (k, d) = (keys.clone(), down.clone());
        let server = MockUpstream::start(move |_| {
            if *d.lock().unwrap() {
                return Reply::error(503, "down");
            }
            Reply::json(200, json!({"keys": k.lock().unwrap().clone()}))
        })
        .await
        .unwrap();
        Self { keys, down, server }
    }

    fn url(&self) -> String {
        format!("http://{}/realms/portcullis/certs", self.server.addr)
    }

    fn set_keys(&self, keys: Vec<Value>) {
        *self.keys.lock().unwrap() = keys;
    }

    fn count(&self) -> usize {
        self.server.count()
    }
}

fn mapping() -> ClaimMapping {
    ClaimMapping {
        org: Some("https://portcullis.test/org".into()),
        team: Some("groups.team".into()),
        role: "realm_access.roles".into(),
        roles: HashMap::from([
            ("portcullis-admin".into(), GatewayRole::GatewayAdmin),
            ("org-admin".into(), GatewayRole::OrgAdmin),
            ("team-admin".into(), GatewayRole::TeamAdmin),
            ("user".into(), GatewayRole::Member),
            ("read-only".into(), GatewayRole::Viewer),
        ]),
    }
}

fn verifier_with(idp: &Idp, timing: JwksTiming) -> OidcVerifier {
    let client = crate::provider::client::build(Duration::from_secs(2)).unwrap();
    let config = OidcConfig::new(ISSUER, AUDIENCE, idp.url(), mapping());
    OidcVerifier::with_timing(config, client, timing).unwrap()
}

fn verifier(idp: &Idp) -> OidcVerifier {
    verifier_with(idp, JwksTiming::default())
}

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

fn claims() -> Value {
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-42",
        "exp": now() + 600,
        "iat": now(),
        "https://portcullis.test/org": "acme",
        "groups": {"team": "research"},
        "realm_access": {"roles": ["offline_access", "user", "org-admin"]},
    })
}

fn sign(alg: Algorithm, kid: Option<&str>, pem: &str, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    let key = match alg {
        Algorithm::ES256 => EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(),
        _ => EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
    };
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

fn rs1(claims: &Value) -> String {
    sign(Algorithm::RS256, Some("test-rsa-1"), RSA1_PEM, claims)
}

async fn standard_idp() -> Idp {
    Idp::start(vec![jwk(RSA1_JWK), jwk(EC_JWK)]).await
}

#[tokio::test]
async fn valid_rs256_token_maps_to_a_principal() {
    let idp = standard_idp().await;
    let v = verifier(&idp);
    let c = claims();
    let p = v.verify(&rs1(&c)).await.unwrap();
    assert_eq!(
        p,
        JwtPrincipal {
            subject: "user-42".into(),
            org: Some("acme".into()),
            team: Some("research".into()),
            role: GatewayRole::OrgAdmin,
            expires_at: c["exp"].as_u64().unwrap(),
        }
    );
    // The second token is verified from the cache.
    v.verify(&rs1(&c)).await.unwrap();
    assert_eq!(idp.count(), 1);
    assert_eq!(idp.server.requests()[0].method, "GET");
}

#[tokio::test]
async fn valid_es256_token() {
    let idp = standard_idp().await;
    let token = sign(Algorithm::ES256, Some("test-ec-1"), EC_PEM, &claims());
    let p = verifier(&idp).verify(&token).await.unwrap();
    assert_eq!(p.subject, "user-42");
}

#[tokio::test]
async fn expiry_and_not_before_with_leeway() {
    let idp = standard_idp().await;
    let v = verifier(&idp);
    let mut c = claims();
    c["exp"] = json!(now() - 120);
    assert_eq!(v.verify(&rs1(&c)).await, Err(OidcError::Expired));
    c["exp"] = json!(now() - 30); // within the 60 s leeway
    assert!(v.verify(&rs1(&c)).await.is_ok());

    let mut c = claims();
    c["nbf"] = json!(now() + 300);
    assert_eq!(v.verify(&rs1(&c)).await, Err(OidcError::NotYetValid));
    c["nbf"] = json!(now() + 30);
    assert!(v.verify(&rs1(&c)).await.is_ok());

    let mut c = claims();
    c.as_object_mut().unwrap().remove("exp");
    assert_eq!(
        v.verify(&rs1(&c)).await,
        Err(OidcError::MissingClaim("exp".into()))
    );
}

#[tokio::test]
async fn issuer_and_audience() {
    let idp = standard_idp().await;
    let v = verifier(&idp);
    let mut c = claims();
    c["iss"] = json!("https://evil.test.invalid");
    assert_eq!(v.verify(&rs1(&c)).await, Err(OidcError::WrongIssuer));
    c.as_object_mut().unwrap().remove("iss");
    assert_eq!(v.verify(&rs1(&c)).await, Err(OidcError::WrongIssuer));

    let mut c = claims();
    c["aud"] = json!("another-app");
    assert_eq!(v.verify(&rs1(&c)).await, Err(OidcError::WrongAudience));
    c.as_object_mut().unwrap().remove("aud");
    assert_eq!(v.verify(&rs1(&c)).await, Err(OidcError::WrongAudience));
    c["aud"] = json!(["another-app", AUDIENCE]);
    assert!(v.verify(&rs1(&c)).await.is_ok());
}

#[tokio::test]
async fn unknown_kid_refreshes_once_after_rotation() {
    let idp = Idp::start(vec![jwk(RSA1_JWK)]).await;
    let v = verifier_with(
        &idp,
        JwksTiming {
            min_refresh_interval: Duration::from_millis(200),
            ..JwksTiming::default()
        },
    );
    v.verify(&rs1(&claims())).await.unwrap();
    assert_eq!(idp.count(), 1);

    // The IdP rotates: key 2 replaces key 1.
    idp.set_keys(vec![jwk(RSA2_JWK)]);
    tokio::time::sleep(Duration::from_millis(250)).await;
    let token2 = sign(Algorithm::RS256, Some("test-rsa-2"), RSA2_PEM, &claims());
    assert_eq!(v.verify(&token2).await.unwrap().subject, "user-42");
    assert_eq!(idp.count(), 2, "exactly one refresh");
    v.verify(&token2).await.unwrap();
    assert_eq!(idp.count(), 2);

    // Key 1 is gone from the new set, and asking again within the window fetches nothing.
    assert_eq!(v.verify(&rs1(&claims())).await, Err(OidcError::UnknownKey));
    assert_eq!(idp.count(), 2);
}

#[tokio::test]
async fn forged_kids_cannot_hammer_the_idp() {
    let idp = standard_idp().await;
    let v = verifier(&idp);
    for i in 0..25 {
        let forged = sign(
            Algorithm::RS256,
            Some(&format!("forged-{i}")),
            RSA1_PEM,
            &claims(),
        );
        assert_eq!(v.verify(&forged).await, Err(OidcError::UnknownKey));
    }
    assert_eq!(idp.count(), 1, "at most one JWKS request within the window");
    // Known keys keep working from the cache.
    v.verify(&rs1(&claims())).await.unwrap();
    assert_eq!(idp.count(), 1);
}

#[tokio::test]
async fn concurrent_callers_share_one_fetch() {
    let idp = standard_idp().await;
    let v = Arc::new(verifier(&idp));
    let token = rs1(&claims());
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (v, token) = (v.clone(), token.clone());
            tokio::spawn(async move { v.verify(&token).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(idp.count(), 1);
}

#[tokio::test]
async fn a_stale_set_is_refreshed() {
    let idp = standard_idp().await;
    let v = verifier_with(
        &idp,
        JwksTiming {
            min_refresh_interval: Duration::ZERO,
            max_age: Duration::from_millis(100),
            ..JwksTiming::default()
        },
    );
    v.verify(&rs1(&claims())).await.unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    v.verify(&rs1(&claims())).await.unwrap();
    assert_eq!(idp.count(), 2);
}

#[tokio::test]
async fn alg_none_and_hs256_are_refused_before_any_key_lookup() {
    let idp = standard_idp().await;
    let v = verifier(&idp);
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","kid":"test-rsa-1","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims().to_string());
    let none = format!("{header}.{payload}.");
    assert_eq!(v.verify(&none).await, Err(OidcError::UnsupportedAlgorithm));

    let mut h = Header::new(Algorithm::HS256);
    h.kid = Some("test-rsa-1".into());
    // The classic confusion attack: the RSA public key used as an HMAC secret.
    let hs = jsonwebtoken::encode(
        &h,
        &claims(),
        &EncodingKey::from_secret(RSA1_JWK.as_bytes()),
    )
    .unwrap();
    assert_eq!(v.verify(&hs).await, Err(OidcError::UnsupportedAlgorithm));
    assert_eq!(idp.count(), 0);

    // Nor can a configuration allow HS*.
    let client = crate::provider::client::build(Duration::from_secs(2)).unwrap();
    let mut config = OidcConfig::new(ISSUER, AUDIENCE, idp.url(), mapping());
    config.algorithms = vec![Algorithm::RS256, Algorithm::HS256];
    assert!(OidcVerifier::new(config, client).is_err());
}

#[tokio::test]
async fn tampered_or_mismatched_tokens_fail_the_signature() {
    let idp = standard_idp().await;
    let v = verifier(&idp);
    let token = rs1(&claims());
    let mut parts: Vec<&str> = token.split('.').collect();
    let mut forged = claims();
    forged["realm_access"]["roles"] = json!(["portcullis-admin"]);
    let payload = URL_SAFE_NO_PAD.encode(forged.to_string());
    parts[1] = &payload;
    assert_eq!(
        v.verify(&parts.join(".")).await,
        Err(OidcError::BadSignature)
    );

    // An RSA signature presented under the EC key's id.
    let confused = sign(Algorithm::RS256, Some("test-ec-1"), RSA1_PEM, &claims());
    assert_eq!(v.verify(&confused).await, Err(OidcError::BadSignature));
    // Key 2's signature under key 1's id.
    let wrong = sign(Algorithm::RS256, Some("test-rsa-1"), RSA2_PEM, &claims());
    assert_eq!(v.verify(&wrong).await, Err(OidcError::BadSignature));

    assert_eq!(v.verify("not-a-jwt").await, Err(OidcError::Malformed));
    assert_eq!(v.verify("a.b.c.d").await, Err(OidcError::Malformed));
    let no_kid = sign(Algorithm::RS256, None, RSA1_PEM, &claims());
    assert_eq!(v.verify(&no_kid).await, Err(OidcError::UnknownKey));
}

#[tokio::test]
async fn claim_mapping_and_role_map() {
    let idp = standard_idp().await;
    let v = verifier(&idp);

    // The most privileged mapped role of an array wins; a single string is accepted too.
    let mut c = claims();
    c["realm_access"]["roles"] = json!(["read-only", "portcullis-admin", "unmapped"]);
    assert_eq!(
        v.verify(&rs1(&c)).await.unwrap().role,
        GatewayRole::GatewayAdmin
    );
    c["realm_access"]["roles"] = json!("team-admin");
    assert_eq!(
        v.verify(&rs1(&c)).await.unwrap().role,
        GatewayRole::TeamAdmin
    );

    c["realm_access"]["roles"] = json!(["secret-role-value"]);
    let err = v.verify(&rs1(&c)).await.unwrap_err();
    assert_eq!(err, OidcError::UnknownRole);
    assert!(!err.to_string().contains("secret-role-value"));

    c["realm_access"] = json!({});
    assert_eq!(
        v.verify(&rs1(&c)).await,
        Err(OidcError::MissingClaim("realm_access.roles".into()))
    );

    // Organization and team are optional: a token without them has none.
    let mut c = claims();
    c["groups"] = json!({"other": "value-not-to-leak"});
    c.as_object_mut()
        .unwrap()
        .remove("https://portcullis.test/org");
    let p = v.verify(&rs1(&c)).await.unwrap();
    assert_eq!((p.org, p.team), (None, None));

    // A team of the wrong type names the claim, never a value.
    let mut c = claims();
    c["groups"] = json!({"team": ["value-not-to-leak"]});
    let err = v.verify(&rs1(&c)).await.unwrap_err();
    assert_eq!(err, OidcError::MissingClaim("groups.team".into()));
    assert!(!err.to_string().contains("value-not-to-leak"));
    c["groups"] = json!({"team": ""});
    assert_eq!(
        v.verify(&rs1(&c)).await,
        Err(OidcError::MissingClaim("groups.team".into()))
    );

    let mut c = claims();
    c["https://portcullis.test/org"] = json!(7);
    assert_eq!(
        v.verify(&rs1(&c)).await,
        Err(OidcError::MissingClaim(
            "https://portcullis.test/org".into()
        ))
    );

    let mut c = claims();
    c.as_object_mut().unwrap().remove("sub");
    assert_eq!(
        v.verify(&rs1(&c)).await,
        Err(OidcError::MissingClaim("sub".into()))
    );
}

#[tokio::test]
async fn jwks_endpoint_down_is_unavailable() {
    let idp = standard_idp().await;
    *idp.down.lock().unwrap() = true;
    let v = verifier(&idp);
    assert_eq!(
        v.verify(&rs1(&claims())).await,
        Err(OidcError::JwksUnavailable)
    );
    // Within the window the failure is remembered, without another request.
    assert_eq!(
        v.verify(&rs1(&claims())).await,
        Err(OidcError::JwksUnavailable)
    );
    assert_eq!(idp.count(), 1);

    // Nothing listening at all.
    let client = crate::provider::client::build(Duration::from_secs(2)).unwrap();
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let config = OidcConfig::new(
        ISSUER,
        AUDIENCE,
        format!("http://{closed}/certs"),
        mapping(),
    );
    let v = OidcVerifier::new(config, client).unwrap();
    assert_eq!(
        v.verify(&rs1(&claims())).await,
        Err(OidcError::JwksUnavailable)
    );
}

#[tokio::test]
async fn a_failed_refresh_keeps_the_last_good_set() {
    let idp = standard_idp().await;
    let v = verifier_with(
        &idp,
        JwksTiming {
            min_refresh_interval: Duration::ZERO,
            max_age: Duration::from_millis(50),
            ..JwksTiming::default()
        },
    );
    v.verify(&rs1(&claims())).await.unwrap();
    *idp.down.lock().unwrap() = true;
    tokio::time::sleep(Duration::from_millis(80)).await;
    v.verify(&rs1(&claims())).await.unwrap();
    assert_eq!(idp.count(), 2);
}
