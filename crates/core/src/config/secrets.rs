//! The `secrets:` block: the master keys that encrypt provider credentials at rest (envelope
//! encryption, [`crate::envelope`]). The current key seals; previous keys still open, until
//! `portcullis secrets rotate` has re-wrapped everything under the current one.
//!
//! ```yaml
//! secrets:
//!   master_key: ${PORTCULLIS_MASTER_KEY}        # or master_key_file: /run/secrets/master-key
//!   previous_master_keys: [${OLD_MASTER_KEY}]   # and/or previous_master_key_files: [path]
//! ```
//!
//! A master key is 32 random bytes, base64-encoded (`portcullis secrets generate` prints one).
//! A key file holds the base64 text; surrounding whitespace (a trailing newline) is ignored. A
//! relative file path is read from the gateway's working directory, as other paths of the file.

use std::sync::Arc;

use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::envelope::Keyring;

/// Bytes of a master key.
const MASTER_KEY_BYTES: usize = 32;
/// A key file larger than this is not a master key (44 base64 characters and a newline).
const MAX_KEY_FILE_BYTES: u64 = 1024;

/// The validated `secrets:` block.
#[derive(Debug, Clone)]
pub struct SecretsConfig {
    /// The current master key (seals) and the previous ones (still open).
    pub keyring: Arc<Keyring>,
}

impl SecretsConfig {
    /// The ids of the current and previous master keys, to tell whether the block changed.
    pub fn key_ids(&self) -> Vec<String> {
        self.keyring.key_ids()
    }
}

/// The `secrets:` block as written.
#[derive(Debug, Default, Deserialize)]
pub struct RawSecrets {
    pub master_key: Option<String>,
    pub master_key_file: Option<String>,
    pub previous_master_keys: Option<Vec<String>>,
    pub previous_master_key_files: Option<Vec<String>>,
}

/// Checks a base64 master key; the message says what is wrong without showing the key.
pub(super) fn check_master_key(encoded: &SecretString) -> Result<(), String> {
    let text = encoded.expose_secret().trim();
    if text.is_empty() {
        return Err("is empty: a master key is 32 random bytes, base64-encoded \
                    (`portcullis secrets generate` makes one)"
            .into());
    }
    match base64::engine::general_purpose::STANDARD.decode(text) {
        Err(_) => Err(
            "is not base64: a master key is 32 random bytes, base64-encoded \
                       (`portcullis secrets generate` makes one)"
                .into(),
        ),
        Ok(mut bytes) => {
            let len = bytes.len();
            bytes.fill(0);
            if len == MASTER_KEY_BYTES {
                Ok(())
            } else {
                Err(format!(
                    "decodes to {len} bytes; a master key is {MASTER_KEY_BYTES} bytes \
                     (`portcullis secrets generate` makes one)"
                ))
            }
        }
    }
}

/// Reads a master key file: its text without surrounding whitespace. The message of an error
/// names what failed, never the content.
pub(super) fn read_key_file(path: &str) -> Result<SecretString, String> {
    if path.trim().is_empty() {
        return Err("must be a file path".into());
    }
    let size = std::fs::metadata(path)
        .map_err(|e| format!("cannot read {path}: {}", e.kind()))?
        .len();
    if size > MAX_KEY_FILE_BYTES {
        return Err(format!(
            "{path} is {size} bytes: too large to hold a master key (44 base64 characters)"
        ));
    }
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {}", e.kind()))?;
    let key = SecretString::from(text.trim().to_owned());
    drop(SecretString::from(text));
    Ok(key)
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    fn b64(bytes: &[u8]) -> SecretString {
        SecretString::from(base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    #[test]
    fn master_keys_are_32_bytes_of_base64() {
        assert_eq!(check_master_key(&b64(&[7; 32])), Ok(()));
        let padded = SecretString::from(format!("  {}\n", b64(&[7; 32]).expose_secret()));
        assert_eq!(check_master_key(&padded), Ok(()));
        let short = check_master_key(&b64(&[7; 16])).unwrap_err();
        assert!(short.starts_with("decodes to 16 bytes"), "{short}");
        let long = check_master_key(&b64(&[7; 33])).unwrap_err();
        assert!(long.starts_with("decodes to 33 bytes"), "{long}");
        let text = check_master_key(&SecretString::from("not base64 at all!")).unwrap_err();
        assert!(text.starts_with("is not base64"), "{text}");
        assert!(!text.contains("at all"), "the key is not echoed: {text}");
        let empty = check_master_key(&SecretString::from(" ")).unwrap_err();
        assert!(empty.starts_with("is empty"), "{empty}");
    }

    #[test]
    fn key_files_are_read_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let key = b64(&[9; 32]);
        let mut f = std::fs::File::create(&path).unwrap();
        writeln!(f, "{}", key.expose_secret()).unwrap();
        let read = read_key_file(path.to_str().unwrap()).unwrap();
        assert_eq!(read.expose_secret(), key.expose_secret());

        let missing = dir.path().join("nope.key");
        let err = read_key_file(missing.to_str().unwrap()).unwrap_err();
        assert!(
            err.contains("cannot read") && err.contains("not found"),
            "{err}"
        );
        assert!(read_key_file(" ").is_err());

        let big = dir.path().join("big.key");
        std::fs::write(&big, "A".repeat(4096)).unwrap();
        let err = read_key_file(big.to_str().unwrap()).unwrap_err();
        assert!(err.contains("too large") && !err.contains("AAAA"), "{err}");
    }
}
