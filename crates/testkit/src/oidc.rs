//! A local OIDC identity provider for tests: a JWKS endpoint (on the mock upstream, port 0)
//! whose key set a test can change and whose fetches it can count, and tokens signed with the
//! TEST-ONLY keys of `fixtures/` (see its README: they are public and worthless), including the
//! forgeries a verifier must refuse (`alg: none`, HS256 with the public key as the secret).

use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::{MockUpstream, Reply};

/// The issuer of the test IdP's tokens (never contacted: only the JWKS URL is).
pub const ISSUER: &str = "https://idp.test.invalid/realms/portcullis";
/// The audience the test IdP's tokens are meant for.
pub const AUDIENCE: &str = "portcullis-gateway";

/// One TEST-ONLY signing key of `fixtures/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestKey {
    /// RSA, `kid` `test-rsa-1`, RS256.
    Rsa1,
    /// A second RSA key, `kid` `test-rsa-2`, RS256: the one an IdP rotates to.
    Rsa2,
    /// EC P-256, `kid` `test-ec-1`, ES256.
    Ec,
}

impl TestKey {
    pub fn kid(self) -> &'static str {
        match self {
            Self::Rsa1 => "test-rsa-1",
            Self::Rsa2 => "test-rsa-2",
            Self::Ec => "test-ec-1",
        }
    }

    pub fn algorithm(self) -> Algorithm {
        match self {
            Self::Rsa1 | Self::Rsa2 => Algorithm::RS256,
            Self::Ec => Algorithm::ES256,
        }
    }

    fn private_pem(self) -> &'static str {
        match self {
            Self::Rsa1 => include_str!("../fixtures/TEST-ONLY-rsa-private.pem"),
            Self::Rsa2 => include_str!("../fixtures/TEST-ONLY-rsa2-private.pem"),
            Self::Ec => include_str!("../fixtures/TEST-ONLY-ec-p256-private.pem"),
        }
    }

    /// The public JWK as the IdP publishes it.
    pub fn jwk_json(self) -> &'static str {
        match self {
            Self::Rsa1 => include_str!("../fixtures/TEST-ONLY-rsa.jwk.json"),
            Self::Rsa2 => include_str!("../fixtures/TEST-ONLY-rsa2.jwk.json"),
            Self::Ec => include_str!("../fixtures/TEST-ONLY-ec-p256.jwk.json"),
        }
    }

    pub fn jwk(self) -> anyhow::Result<Value> {
        serde_json::from_str(self.jwk_json()).context("a fixture JWK is not JSON")
    }

    /// A token with `claims`, signed by this key under its own `kid`.
    pub fn sign(self, claims: &Value) -> anyhow::Result<String> {
        self.sign_as(self.kid(), claims)
    }

    /// A token with `claims`, signed by this key but naming `kid` (a key it is not, to forge).
    pub fn sign_as(self, kid: &str, claims: &Value) -> anyhow::Result<String> {
        let mut header = Header::new(self.algorithm());
        header.kid = Some(kid.to_owned());
        let pem = self.private_pem().as_bytes();
        let key = match self {
            Self::Ec => EncodingKey::from_ec_pem(pem),
            Self::Rsa1 | Self::Rsa2 => EncodingKey::from_rsa_pem(pem),
        }
        .context("a fixture private key does not load")?;
        jsonwebtoken::encode(&header, claims, &key).context("signing a test token")
    }
}

/// An unsigned token (`alg: none`, empty signature) naming `kid`.
pub fn unsigned_token(kid: &str, claims: &Value) -> String {
    let header = json!({"alg": "none", "typ": "JWT", "kid": kid});
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

/// An HS256 token naming `kid`, with `secret` as the HMAC key: the key-confusion forgery, when
/// the secret is the IdP's public key.
pub fn hs256_token(kid: &str, claims: &Value, secret: &[u8]) -> anyhow::Result<String> {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret))
        .context("signing a test token")
}

/// The claims of a valid token from the test IdP for `subject`, expiring in ten minutes; add
/// the org, team and role claims a test's mapping reads.
pub fn claims(subject: &str) -> Value {
    let now = jsonwebtoken::get_current_timestamp();
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": subject,
        "iat": now,
        "exp": now + 600,
    })
}

/// The running JWKS endpoint; it stops when dropped.
#[derive(Debug)]
pub struct TestIdp {
    keys: Arc<Mutex<Vec<Value>>>,
    server: MockUpstream,
}

impl TestIdp {
    /// Serves the public halves of `keys` at [`TestIdp::jwks_url`].
    pub async fn start(keys: &[TestKey]) -> anyhow::Result<Self> {
        let keys = Arc::new(Mutex::new(jwks(keys)?));
        let served = keys.clone();
        let server = MockUpstream::start(move |_| {
            let keys = served.lock().map(|k| k.clone()).unwrap_or_default();
            Reply::json(200, json!({ "keys": keys }))
        })
        .await?;
        Ok(Self { keys, server })
    }

    /// `http://127.0.0.1:PORT/realms/portcullis/protocol/openid-connect/certs`.
    pub fn jwks_url(&self) -> String {
        format!(
            "http://{}/realms/portcullis/protocol/openid-connect/certs",
            self.server.addr
        )
    }

    /// Publishes `keys` instead (a rotation).
    pub fn set_keys(&self, keys: &[TestKey]) -> anyhow::Result<()> {
        let set = jwks(keys)?;
        let mut current = self
            .keys
            .lock()
            .map_err(|_| anyhow::anyhow!("the key set lock is poisoned"))?;
        *current = set;
        Ok(())
    }

    /// How many times the key set was fetched.
    pub fn fetches(&self) -> usize {
        self.server.count()
    }
}

fn jwks(keys: &[TestKey]) -> anyhow::Result<Vec<Value>> {
    keys.iter().map(|k| k.jwk()).collect()
}
