//! Validation of the Google provider types: `gemini` (AI Studio, an API key) and `vertex`
//! (Vertex AI, a project, a location and a service account key).

use std::collections::BTreeMap;
use std::sync::Arc;

use http::{HeaderName, HeaderValue};
use secrecy::SecretString;

use super::super::raw::RawProvider;
use super::super::{GeminiConfig, ProviderConfig, VertexConfig};
use super::{Validator, is_reserved_header};
use crate::provider::gemini::vertex_auth::ServiceAccount;
use crate::provider::gemini::{AI_STUDIO_BASE_URL, vertex_base_url};

/// A Google resource name segment (project id, location): safe as one URL path segment.
fn is_segment(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 128
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

impl Validator<'_> {
    pub(super) fn gemini(&mut self, path: &str, raw: RawProvider) -> Option<ProviderConfig> {
        let base_url = self.google_base_url(path, raw.base_url.as_deref(), AI_STUDIO_BASE_URL);
        let api_key = raw.api_key.filter(|k| !k.is_empty());
        match &api_key {
            None => self.problem(
                format!("{path}.api_key"),
                "missing: a Gemini API key (write it as ${ENV_VAR})",
            ),
            Some(key) if HeaderValue::try_from(key.as_str()).is_err() => self.problem(
                format!("{path}.api_key"),
                "holds characters an HTTP header cannot carry",
            ),
            Some(_) => {}
        }
        let headers = self.google_headers(path, raw.headers);
        Some(ProviderConfig::Gemini(GeminiConfig {
            base_url,
            api_key: SecretString::from(api_key?),
            headers,
        }))
    }

    pub(super) fn vertex(&mut self, path: &str, raw: RawProvider) -> Option<ProviderConfig> {
        let credentials = match (raw.credentials.as_deref(), raw.credentials_file.as_deref()) {
            (Some(_), Some(_)) => {
                self.problem(
                    format!("{path}.credentials_file"),
                    "give either credentials or credentials_file, not both",
                );
                None
            }
            (Some(json), None) => self.service_account(&format!("{path}.credentials"), json),
            (None, Some(file)) => {
                let fpath = format!("{path}.credentials_file");
                match std::fs::read_to_string(file) {
                    Ok(json) => self.service_account(&fpath, &json),
                    Err(e) => {
                        self.problem(fpath, format!("cannot read the file: {}", e.kind()));
                        None
                    }
                }
            }
            (None, None) => {
                self.problem(
                    format!("{path}.credentials"),
                    "missing: a service account key, as credentials (the JSON, written as \
                     ${ENV_VAR}) or credentials_file (its path)",
                );
                None
            }
        };
        let project = raw.project.or_else(|| {
            credentials
                .as_ref()
                .and_then(|c| c.project_id().map(str::to_owned))
        });
        match &project {
            Some(p) if is_segment(p) => {}
            Some(_) => self.problem(
                format!("{path}.project"),
                "not a Google Cloud project id (letters, digits, - _ . :)",
            ),
            None if credentials.is_some() => self.problem(
                format!("{path}.project"),
                "missing: the Google Cloud project (the key file names none)",
            ),
            None => {}
        }
        let location = raw.location;
        match &location {
            Some(l) if is_segment(l) => {}
            Some(_) => self.problem(
                format!("{path}.location"),
                "not a Vertex AI location such as us-central1 or global",
            ),
            None => self.problem(
                format!("{path}.location"),
                "missing: the Vertex AI location, such as us-central1, europe-west4 or global",
            ),
        }
        let default_base = location.as_deref().map(vertex_base_url).unwrap_or_default();
        let base_url = self.google_base_url(path, raw.base_url.as_deref(), &default_base);
        let headers = self.google_headers(path, raw.headers);
        Some(ProviderConfig::Vertex(VertexConfig {
            base_url,
            project: project?,
            location: location?,
            credentials: Arc::new(credentials?),
            headers,
        }))
    }

    fn service_account(&mut self, path: &str, json: &str) -> Option<ServiceAccount> {
        ServiceAccount::from_json(json)
            .map_err(|why| self.problem(path, format!("the service account key {why}")))
            .ok()
    }

    fn google_base_url(&mut self, path: &str, given: Option<&str>, default: &str) -> String {
        let Some(url) = given else {
            return default.to_owned();
        };
        let url = url.trim_end_matches('/').to_owned();
        match url.parse::<http::Uri>() {
            Ok(uri)
                if matches!(uri.scheme_str(), Some("http" | "https"))
                    && uri.host().is_some()
                    && uri.query().is_none() => {}
            _ => self.problem(
                format!("{path}.base_url"),
                "not an http(s) URL such as https://generativelanguage.googleapis.com",
            ),
        }
        url
    }

    fn google_headers(
        &mut self,
        path: &str,
        headers: Option<BTreeMap<String, String>>,
    ) -> Vec<(HeaderName, HeaderValue)> {
        let mut out = Vec::new();
        for (name, value) in headers.unwrap_or_default() {
            let hpath = format!("{path}.headers.{name}");
            match (
                HeaderName::try_from(name.as_str()),
                HeaderValue::try_from(value),
            ) {
                (Ok(n), Ok(mut v)) => {
                    if is_reserved_header(&n) || n.as_str() == "x-goog-api-key" {
                        self.problem(hpath, "this header is set by the gateway");
                    } else {
                        v.set_sensitive(true);
                        out.push((n, v));
                    }
                }
                _ => self.problem(hpath, "not a valid HTTP header name and value"),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use secrecy::ExposeSecret;
    use serde_json::json;

    use super::super::super::{Config, ConfigProblem};
    use super::super::parse_and_validate;
    use super::*;

    const PRIVATE: &str = include_str!("../../../../testkit/fixtures/TEST-ONLY-rsa-private.pem");

    fn key_json(project: Option<&str>) -> String {
        let mut key = json!({
            "type": "service_account", "private_key_id": "kid",
            "private_key": PRIVATE, "client_email": "gw@p.iam.gserviceaccount.com",
            "token_uri": "https://oauth2.googleapis.com/token",
        });
        if let Some(p) = project {
            key["project_id"] = json!(p);
        }
        key.to_string()
    }

    fn load(text: &str) -> Result<Config, Vec<ConfigProblem>> {
        let vars = HashMap::from([
            ("GEMINI_KEY".to_owned(), "AIza-test".to_owned()),
            ("SA".to_owned(), key_json(Some("proj-from-key"))),
            ("SA_NO_PROJECT".to_owned(), key_json(None)),
        ]);
        parse_and_validate(text, &vars)
    }

    fn problems(text: &str) -> Vec<(String, String)> {
        super::super::tests::sorted_problems(load(text))
    }

    #[test]
    fn gemini_and_vertex_validate() {
        let dir = tempfile_dir();
        let file = dir.join("sa.json");
        std::fs::write(&file, key_json(Some("from-file"))).unwrap();
        let cfg = load(&format!(
            r#"
providers:
  g: {{ type: gemini, api_key: "${{GEMINI_KEY}}", headers: {{ x-goog-user-project: billing }} }}
  g2: {{ type: gemini, api_key: k, base_url: "http://127.0.0.1:9/" }}
  v: {{ type: vertex, location: us-central1, credentials: "${{SA}}" }}
  v2: {{ type: vertex, project: other, location: global, credentials_file: "{}" }}
"#,
            file.display()
        ))
        .unwrap();
        let Some(ProviderConfig::Gemini(g)) = cfg.providers.get("g") else {
            panic!("gemini missing")
        };
        assert_eq!(g.base_url, "https://generativelanguage.googleapis.com");
        assert_eq!(g.api_key.expose_secret(), "AIza-test");
        assert_eq!(g.headers.len(), 1);
        let Some(ProviderConfig::Gemini(g2)) = cfg.providers.get("g2") else {
            panic!("gemini missing")
        };
        assert_eq!(g2.base_url, "http://127.0.0.1:9");
        let Some(ProviderConfig::Vertex(v)) = cfg.providers.get("v") else {
            panic!("vertex missing")
        };
        assert_eq!(
            (v.project.as_str(), v.location.as_str(), v.base_url.as_str()),
            (
                "proj-from-key",
                "us-central1",
                "https://us-central1-aiplatform.googleapis.com"
            )
        );
        let Some(ProviderConfig::Vertex(v2)) = cfg.providers.get("v2") else {
            panic!("vertex missing")
        };
        assert_eq!(v2.project, "other");
        assert_eq!(v2.base_url, "https://aiplatform.googleapis.com");
        let printed = format!("{cfg:?}");
        assert!(
            !printed.contains("AIza-test") && !printed.contains("PRIVATE KEY"),
            "{printed}"
        );
    }

    #[test]
    fn every_google_problem_has_its_path() {
        let got = problems(
            r#"
providers:
  g1: { type: gemini }
  g4: { type: gemini, api_key: "a\nb" }
  g2: { type: gemini, api_key: k, project: p, location: l, preset: groq, latency: 1s, base_url: "ftp://x" }
  g3: { type: gemini, api_key: k, headers: { x-goog-api-key: a, Authorization: b } }
  v1: { type: vertex }
  v2: { type: vertex, location: "us central", project: "a/b", credentials: "not json" }
  v3: { type: vertex, location: global, credentials: "${SA_NO_PROJECT}" }
  v4: { type: vertex, location: global, credentials: "${SA}", credentials_file: /x, api_key: k }
  v5: { type: vertex, location: global, credentials_file: /nonexistent/sa.json }
  o: { type: openai, api_key: k, location: x, credentials_file: y }
  m: { type: mock, credentials: z }
"#,
        );
        let paths: Vec<&str> = got.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "providers.g1.api_key",
                "providers.g2.base_url",
                "providers.g2.latency",
                "providers.g2.location",
                "providers.g2.preset",
                "providers.g2.project",
                "providers.g3.headers.Authorization",
                "providers.g3.headers.x-goog-api-key",
                "providers.g4.api_key",
                "providers.m.credentials",
                "providers.o.credentials_file",
                "providers.o.location",
                "providers.v1.credentials",
                "providers.v1.location",
                "providers.v2.credentials",
                "providers.v2.location",
                "providers.v2.project",
                "providers.v3.project",
                "providers.v4.api_key",
                "providers.v4.credentials_file",
                "providers.v5.credentials_file",
            ],
            "{got:#?}"
        );
        for (path, message) in &got {
            assert!(!message.contains("PRIVATE"), "{path}: {message}");
        }
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("portcullis-google-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
