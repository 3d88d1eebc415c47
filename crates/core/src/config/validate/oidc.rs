//! Validation of `auth.oidc`: the identity provider whose JWT bearer tokens the gateway accepts
//! (see [`crate::oidc`]). Every problem is reported with its path; a config that passes builds an
//! [`OidcVerifier`](crate::oidc::OidcVerifier) without error.
//!
//! Choices beyond the verifier's own checks:
//!
//! - `jwks_url` must be `https`, except on a loopback host (a local IdP, tests): whoever can
//!   change the key set in transit can sign any token, including a gateway admin's.
//! - `leeway` is a duration like the config's others (`30s`), in whole seconds (the JWT claims
//!   are), and at most 5 minutes: a larger one would keep expired tokens working.
//! - `claims.roles` must map at least one IdP role, to a gateway role by its name
//!   (`gateway_admin`, `org_admin`, `team_admin`, `member`, `viewer`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use jsonwebtoken::Algorithm;

use super::super::raw::{RawOidc, RawOidcClaims};
use super::Validator;
use crate::oidc::{ClaimMapping, GatewayRole, OidcConfig};

const PATH: &str = "auth.oidc";
/// Accepted in `algorithms`: the asymmetric ones.
const ALGORITHMS: &str = "RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA";
const MAX_LEEWAY: Duration = Duration::from_secs(300);

impl Validator<'_> {
    pub(super) fn oidc(&mut self, raw: RawOidc) -> Option<OidcConfig> {
        let issuer = self.oidc_required(
            "issuer",
            raw.issuer,
            "the issuer's `iss`, such as https://idp.example.com/realms/acme",
        );
        let audience = self.oidc_required(
            "audience",
            raw.audience,
            "the `aud` tokens for this gateway carry (the client id at the IdP)",
        );
        let jwks_url = self.oidc_required(
            "jwks_url",
            raw.jwks_url,
            "the URL of the IdP's key set, such as https://idp.example.com/realms/acme/protocol/openid-connect/certs",
        );
        if let Some(url) = &jwks_url {
            self.jwks_url(url);
        }
        let algorithms = match raw.algorithms {
            None => Some(vec![Algorithm::RS256, Algorithm::ES256]),
            Some(names) => self.algorithms(&names),
        };
        let leeway = self.leeway(raw.leeway.as_deref());
        let claims = match raw.claims {
            Some(claims) => self.claims(claims),
            None => {
                self.problem(
                    format!("{PATH}.claims"),
                    "missing: which claim carries the role (`role`) and how IdP roles map to gateway roles (`roles`)",
                );
                None
            }
        };
        let mut config = OidcConfig::new(issuer?, audience?, jwks_url?, claims?);
        config.algorithms = algorithms?;
        config.leeway = leeway?;
        Some(config)
    }

    /// A required, non-empty string (surrounding spaces are a mistake, not part of the value).
    fn oidc_required(&mut self, key: &str, value: Option<String>, what: &str) -> Option<String> {
        let path = format!("{PATH}.{key}");
        match value {
            None => {
                self.problem(path, format!("missing: {what}"));
                None
            }
            Some(v) if v.trim().is_empty() => {
                self.problem(path, format!("must not be empty: {what}"));
                None
            }
            Some(v) if v.trim() != v => {
                self.problem(path, "must not start or end with spaces");
                None
            }
            Some(v) => Some(v),
        }
    }

    fn jwks_url(&mut self, url: &str) {
        let path = format!("{PATH}.jwks_url");
        let Some(uri) = url
            .parse::<http::Uri>()
            .ok()
            .filter(|u| u.host().is_some_and(|h| !h.is_empty()))
        else {
            self.problem(path, "not a URL such as https://idp.example.com/certs");
            return;
        };
        let loopback = uri.host().is_some_and(is_loopback);
        match uri.scheme_str() {
            Some("https") => {}
            Some("http") if loopback => {}
            Some("http") => self.problem(
                path,
                "must be https (plain http only to a loopback address): whoever can change the key set in transit can sign any token",
            ),
            _ => self.problem(path, "not an https URL such as https://idp.example.com/certs"),
        }
    }

    fn algorithms(&mut self, names: &[String]) -> Option<Vec<Algorithm>> {
        let path = format!("{PATH}.algorithms");
        if names.is_empty() {
            self.problem(
                path,
                format!("must name at least one algorithm of: {ALGORITHMS}"),
            );
            return None;
        }
        let mut algorithms = Vec::with_capacity(names.len());
        let mut ok = true;
        for (i, name) in names.iter().enumerate() {
            let item = format!("{path}[{i}]");
            match name.parse::<Algorithm>() {
                Ok(Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) => {
                    ok = false;
                    self.problem(
                        item,
                        format!(
                            "{name} is refused: an HMAC secret cannot come from a public key set, and anyone holding the IdP's public key could sign; use one of {ALGORITHMS}"
                        ),
                    );
                }
                Ok(alg) => {
                    if !algorithms.contains(&alg) {
                        algorithms.push(alg);
                    }
                }
                Err(_) => {
                    ok = false;
                    self.problem(
                        item,
                        format!("'{name}' is not one of: {ALGORITHMS} (names are case-sensitive)"),
                    );
                }
            }
        }
        ok.then_some(algorithms)
    }

    fn leeway(&mut self, value: Option<&str>) -> Option<Duration> {
        let path = format!("{PATH}.leeway");
        let Some(value) = value else {
            return Some(Duration::from_secs(60));
        };
        let leeway = self.duration(&path, Some(value))?;
        if leeway.subsec_nanos() != 0 {
            self.problem(path, "must be whole seconds, such as 30s");
            None
        } else if leeway > MAX_LEEWAY {
            self.problem(
                path,
                "must be at most 5m: a larger leeway keeps expired tokens working",
            );
            None
        } else {
            Some(leeway)
        }
    }

    fn claims(&mut self, raw: RawOidcClaims) -> Option<ClaimMapping> {
        let path = format!("{PATH}.claims");
        let mut ok = true;
        for (key, value) in [("org", &raw.org), ("team", &raw.team)] {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                ok = false;
                self.problem(
                    format!("{path}.{key}"),
                    "must not be empty (leave it out when tokens carry none)",
                );
            }
        }
        let role = match raw.role {
            Some(r) if !r.trim().is_empty() => Some(r),
            Some(_) => {
                self.problem(format!("{path}.role"), "must not be empty");
                None
            }
            None => {
                self.problem(
                    format!("{path}.role"),
                    "missing: the claim (a name, or a dotted path such as realm_access.roles) that carries the user's roles",
                );
                None
            }
        };
        let mut roles = HashMap::new();
        match raw.roles {
            Some(map) if !map.is_empty() => {
                for (idp_role, gateway_role) in map {
                    let item = format!("{path}.roles.{idp_role}");
                    if idp_role.is_empty() {
                        ok = false;
                        self.problem(item, "an IdP role must not be empty");
                        continue;
                    }
                    match gateway_role.parse::<GatewayRole>() {
                        Ok(r) => {
                            roles.insert(idp_role, r);
                        }
                        Err(_) => {
                            ok = false;
                            self.problem(
                                item,
                                format!(
                                    "'{gateway_role}' is not a gateway role: one of gateway_admin, org_admin, team_admin, member, viewer"
                                ),
                            );
                        }
                    }
                }
            }
            _ => {
                ok = false;
                self.problem(
                    format!("{path}.roles"),
                    "missing: map at least one IdP role to a gateway role (gateway_admin, org_admin, team_admin, member or viewer); tokens with no mapped role are refused",
                );
            }
        }
        let mapping = ClaimMapping {
            org: raw.org,
            team: raw.team,
            role: role?,
            roles,
        };
        ok.then_some(mapping)
    }
}

/// `localhost`, or a loopback IP address (`127.0.0.0/8`, `[::1]`).
fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use jsonwebtoken::Algorithm;

    use super::super::parse_and_validate;
    use crate::config::{Config, ConfigProblem};
    use crate::oidc::{GatewayRole, OidcVerifier};

    fn load(oidc: &str) -> Result<Config, Vec<ConfigProblem>> {
        let vars = HashMap::from([("IDP_AUDIENCE".to_owned(), "portcullis".to_owned())]);
        parse_and_validate(&format!("auth:\n  oidc:\n{oidc}"), &vars)
    }

    fn problems(oidc: &str) -> Vec<String> {
        match load(oidc) {
            Ok(_) => panic!("expected problems for:\n{oidc}"),
            Err(p) => p.iter().map(ToString::to_string).collect(),
        }
    }

    const MINIMAL: &str = r#"    issuer: https://idp.example.com/realms/acme
    audience: ${IDP_AUDIENCE}
    jwks_url: https://idp.example.com/realms/acme/protocol/openid-connect/certs
    claims:
      role: realm_access.roles
      roles: { portcullis-admin: gateway_admin, dev: member }
"#;

    #[test]
    fn a_minimal_block_gets_the_defaults_and_builds_a_verifier() {
        let config = match load(MINIMAL) {
            Ok(c) => c,
            Err(p) => panic!("{p:?}"),
        };
        let oidc = config.auth.oidc.unwrap();
        assert_eq!(oidc.issuer, "https://idp.example.com/realms/acme");
        assert_eq!(oidc.audience, "portcullis");
        assert_eq!(oidc.algorithms, vec![Algorithm::RS256, Algorithm::ES256]);
        assert_eq!(oidc.leeway, Duration::from_secs(60));
        assert_eq!(oidc.claims.org, None);
        assert_eq!(oidc.claims.role, "realm_access.roles");
        assert_eq!(
            oidc.claims.roles,
            HashMap::from([
                ("portcullis-admin".to_owned(), GatewayRole::GatewayAdmin),
                ("dev".to_owned(), GatewayRole::Member),
            ])
        );
        let client = crate::provider::client::build(Duration::from_secs(1)).unwrap();
        assert!(OidcVerifier::new(oidc, client).is_ok());
    }

    #[test]
    fn every_field_is_read() {
        let config = load(
            r#"    issuer: https://login.example.com/tenant/v2.0
    audience: api://portcullis
    jwks_url: http://127.0.0.1:8080/certs
    algorithms: [ES384, PS256, ES384]
    leeway: 2m
    claims:
      org: https://example.com/org
      team: groups.team
      role: roles
      roles: { Admin: org_admin, Reader: viewer, Lead: team_admin }
"#,
        )
        .unwrap();
        let oidc = config.auth.oidc.unwrap();
        assert_eq!(oidc.algorithms, vec![Algorithm::ES384, Algorithm::PS256]);
        assert_eq!(oidc.leeway, Duration::from_secs(120));
        assert_eq!(oidc.claims.org.as_deref(), Some("https://example.com/org"));
        assert_eq!(oidc.claims.team.as_deref(), Some("groups.team"));
        assert_eq!(oidc.claims.roles["Reader"], GatewayRole::Viewer);
        for loopback in ["http://localhost/certs", "http://[::1]:9000/certs"] {
            let text = MINIMAL.replace(
                "https://idp.example.com/realms/acme/protocol/openid-connect/certs",
                loopback,
            );
            assert!(load(&text).is_ok(), "{loopback}");
        }
    }

    #[test]
    fn missing_fields_are_reported_with_their_paths() {
        let p = problems("    leeway: 30s\n");
        for expected in [
            "auth.oidc.issuer: missing",
            "auth.oidc.audience: missing",
            "auth.oidc.jwks_url: missing",
            "auth.oidc.claims: missing",
        ] {
            assert!(
                p.iter().any(|m| m.starts_with(expected)),
                "{expected} in {p:#?}"
            );
        }
        let p = problems(
            "    issuer: ''\n    audience: ' '\n    jwks_url: https://idp.example.com/certs\n    claims: { org: '', role: '' }\n",
        );
        for expected in [
            "auth.oidc.issuer: must not be empty",
            "auth.oidc.audience: must not be empty",
            "auth.oidc.claims.org: must not be empty",
            "auth.oidc.claims.role: must not be empty",
            "auth.oidc.claims.roles: missing",
        ] {
            assert!(
                p.iter().any(|m| m.starts_with(expected)),
                "{expected} in {p:#?}"
            );
        }
        assert_eq!(p.len(), 5, "{p:#?}");
    }

    #[test]
    fn urls_algorithms_leeway_and_roles_are_checked() {
        let text = MINIMAL
            .replace(
                "https://idp.example.com/realms/acme/protocol/openid-connect/certs",
                "http://idp.example.com/certs",
            )
            .replace(
                "    claims:",
                "    algorithms: [RS256, HS256, none, rs512]\n    leeway: 10m\n    claims:",
            )
            .replace("dev: member", "dev: member, ops: admin");
        let p = problems(&text);
        let expected = [
            "auth.oidc.jwks_url: must be https (plain http only to a loopback address)",
            "auth.oidc.algorithms[1]: HS256 is refused",
            "auth.oidc.algorithms[2]: 'none' is not one of: RS256",
            "auth.oidc.algorithms[3]: 'rs512' is not one of",
            "auth.oidc.leeway: must be at most 5m",
            "auth.oidc.claims.roles.ops: 'admin' is not a gateway role",
        ];
        for e in expected {
            assert!(p.iter().any(|m| m.starts_with(e)), "{e} in {p:#?}");
        }
        assert_eq!(p.len(), expected.len(), "{p:#?}");

        for (url, message) in [
            ("not a url", "not a URL"),
            ("/certs", "not a URL"),
            ("ftp://idp.example.com/certs", "not an https URL"),
        ] {
            let text = MINIMAL.replace(
                "https://idp.example.com/realms/acme/protocol/openid-connect/certs",
                &format!("'{url}'"),
            );
            let p = problems(&text);
            assert_eq!(p.len(), 1, "{p:#?}");
            assert!(
                p[0].starts_with(&format!("auth.oidc.jwks_url: {message}")),
                "{url}: {p:#?}"
            );
        }

        for (leeway, message) in [
            ("soon", "'soon' is not a duration"),
            ("1500ms", "must be whole seconds"),
        ] {
            let text =
                MINIMAL.replace("    claims:", &format!("    leeway: {leeway}\n    claims:"));
            let p = problems(&text);
            assert_eq!(p.len(), 1, "{p:#?}");
            assert!(
                p[0].starts_with(&format!("auth.oidc.leeway: {message}")),
                "{p:#?}"
            );
        }

        let p = problems(&MINIMAL.replace("    claims:", "    algorithms: []\n    claims:"));
        assert!(
            p[0].starts_with("auth.oidc.algorithms: must name at least one"),
            "{p:#?}"
        );
    }

    #[test]
    fn unknown_keys_in_the_block_are_reported() {
        let text = MINIMAL.replace(
            "    claims:",
            "    client_secret: x\n    claims:\n      email: e",
        );
        let p = problems(&text);
        assert!(
            p.contains(&"auth.oidc.client_secret: unknown key".to_owned()),
            "{p:#?}"
        );
        assert!(
            p.contains(&"auth.oidc.claims.email: unknown key".to_owned()),
            "{p:#?}"
        );
    }
}
