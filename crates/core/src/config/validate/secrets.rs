//! Validation of the `secrets:` block: exactly one current master key (inline or from a file),
//! any number of previous ones, each 32 bytes of base64, no key given twice.

use std::sync::Arc;

use secrecy::SecretString;

use super::super::secrets::{RawSecrets, SecretsConfig, check_master_key, read_key_file};
use super::Validator;
use crate::envelope::Keyring;

impl Validator<'_> {
    pub(super) fn secrets(&mut self, raw: RawSecrets) -> Option<SecretsConfig> {
        let problems_before = self.problems.len();
        let current = match (raw.master_key, raw.master_key_file) {
            (Some(key), None) => self.master_key("secrets.master_key", Ok(SecretString::from(key))),
            (None, Some(file)) => self.master_key("secrets.master_key_file", read_key_file(&file)),
            (Some(_), Some(_)) => {
                self.problem("secrets", "give only one of master_key and master_key_file");
                None
            }
            (None, None) => {
                self.problem(
                    "secrets.master_key",
                    "missing: the master key that encrypts stored credentials, as master_key \
                     (${ENV_VAR}) or master_key_file (a path); `portcullis secrets generate` \
                     makes one",
                );
                None
            }
        };
        let inline = raw.previous_master_keys.unwrap_or_default();
        let files = raw.previous_master_key_files.unwrap_or_default();
        let mut previous = Vec::with_capacity(inline.len() + files.len());
        for (i, key) in inline.into_iter().enumerate() {
            let path = format!("secrets.previous_master_keys[{i}]");
            previous.extend(self.master_key(&path, Ok(SecretString::from(key))));
        }
        for (i, file) in files.iter().enumerate() {
            let path = format!("secrets.previous_master_key_files[{i}]");
            previous.extend(self.master_key(&path, read_key_file(file)));
        }
        let (current_path, current) = current?;
        let mut seen: Vec<(String, String)> = Vec::new();
        let mut keys = Vec::with_capacity(previous.len());
        for (path, key) in std::iter::once((current_path, current.clone())).chain(previous) {
            let id = match Keyring::new(&key, &[]) {
                Ok(ring) => ring.current_id().to_owned(),
                Err(e) => {
                    self.problem(path, e.to_string());
                    continue;
                }
            };
            if let Some((first, _)) = seen.iter().find(|(_, known)| *known == id) {
                self.problem(path, format!("the same key as {first}"));
                continue;
            }
            seen.push((path, id));
            keys.push(key);
        }
        if self.problems.len() > problems_before {
            return None;
        }
        match Keyring::new(&current, keys.get(1..).unwrap_or_default()) {
            Ok(keyring) => Some(SecretsConfig {
                keyring: Arc::new(keyring),
            }),
            Err(e) => {
                self.problem("secrets", e.to_string());
                None
            }
        }
    }

    /// A master key read from `path` (or the reason it could not be read), checked; with its
    /// path, for later messages.
    fn master_key(
        &mut self,
        path: &str,
        key: Result<SecretString, String>,
    ) -> Option<(String, SecretString)> {
        match key.and_then(|k| check_master_key(&k).map(|()| k)) {
            Ok(key) => Some((path.to_owned(), key)),
            Err(message) => {
                self.problem(path, message);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use base64::Engine as _;

    use super::super::parse_and_validate;
    use super::*;
    use crate::config::{Config, ConfigProblem};

    fn key(byte: u8) -> String {
        base64::engine::general_purpose::STANDARD.encode([byte; 32])
    }

    fn load(secrets: &str) -> Result<Config, Vec<ConfigProblem>> {
        let vars = HashMap::from([
            ("KEY_A".to_owned(), key(1)),
            ("KEY_B".to_owned(), key(2)),
            (
                "SHORT".to_owned(),
                base64::engine::general_purpose::STANDARD.encode([1; 31]),
            ),
        ]);
        parse_and_validate(&format!("secrets:\n{secrets}"), &vars)
    }

    fn problems(secrets: &str) -> Vec<(String, String)> {
        load(secrets)
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|p| (p.path, p.message))
            .collect()
    }

    #[test]
    fn a_current_key_and_previous_ones() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("old.key");
        std::fs::write(&file, format!("{}\n", key(3))).unwrap();
        let cfg = load(&format!(
            "  master_key: ${{KEY_A}}\n  previous_master_keys: [\"${{KEY_B}}\"]\n  \
             previous_master_key_files: [\"{}\"]\n",
            file.display()
        ))
        .unwrap();
        let ring = &cfg.secrets.unwrap().keyring;
        let expected = |b: u8| {
            Keyring::new(&SecretString::from(key(b)), &[])
                .unwrap()
                .current_id()
                .to_owned()
        };
        assert_eq!(ring.key_ids(), vec![expected(1), expected(2), expected(3)]);

        // From a file, alone.
        let current = dir.path().join("master.key");
        std::fs::write(&current, key(4)).unwrap();
        let cfg = load(&format!("  master_key_file: \"{}\"\n", current.display())).unwrap();
        assert_eq!(cfg.secrets.unwrap().keyring.current_id(), expected(4));
        assert!(load("  master_key: ${KEY_A}\n").is_ok());
    }

    #[test]
    fn problems_name_the_key_and_never_show_it() {
        let got = problems("  master_key: ${KEY_A}\n  master_key_file: /x\n");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, "secrets");
        assert!(got[0].1.contains("only one of"), "{got:?}");

        let got = problems("  previous_master_keys: [\"${KEY_B}\"]\n");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, "secrets.master_key");
        assert!(got[0].1.starts_with("missing"), "{got:?}");

        let got = problems("  master_key: ${SHORT}\n");
        assert_eq!(got[0].0, "secrets.master_key");
        assert!(got[0].1.starts_with("decodes to 31 bytes"), "{got:?}");

        let got = problems(
            "  master_key: \"not-base64!\"\n  previous_master_keys: [\"${KEY_A}\", \"${KEY_A}\"]\n  \
             previous_master_key_files: [/nonexistent/portcullis.key]\n",
        );
        let paths: Vec<&str> = got.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            ["secrets.master_key", "secrets.previous_master_key_files[0]",],
            "{got:?}"
        );
        assert!(got[0].1.starts_with("is not base64"));
        assert!(got[1].1.contains("cannot read /nonexistent/portcullis.key"));

        let got = problems(
            "  master_key: ${KEY_A}\n  previous_master_keys: [\"${KEY_B}\", \"${KEY_A}\", \"${KEY_B}\"]\n",
        );
        assert_eq!(
            got,
            vec![
                (
                    "secrets.previous_master_keys[1]".to_owned(),
                    "the same key as secrets.master_key".to_owned()
                ),
                (
                    "secrets.previous_master_keys[2]".to_owned(),
                    "the same key as secrets.previous_master_keys[0]".to_owned()
                ),
            ]
        );

        let got = problems("  master_key: ${KEY_A}\n  colour: blue\n");
        assert_eq!(
            got,
            vec![("secrets.colour".to_owned(), "unknown key".to_owned())]
        );
        for (_, message) in problems("  master_key: \"c2VjcmV0LXRleHQ=\"\n") {
            assert!(!message.contains("c2VjcmV0"), "{message}");
        }
    }
}
