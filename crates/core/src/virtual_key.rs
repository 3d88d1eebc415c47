//! Virtual keys: the gateway keys applications hold instead of provider credentials.
//!
//! A key reads `pk-<id>-<secret>`: `pk-` marks it as a Portcullis key (secret scanners and people
//! can recognise a leak), `<id>` is a public identifier (12 lower-case base32 characters, 60
//! bits) under which the key is stored, listed and revoked, and `<secret>` is 256 random bits
//! (base64url, 43 characters). Only the id and a keyed hash of the whole key are stored:
//! HMAC-SHA256 under a server secret, so a stolen database alone cannot be used to test
//! guesses. Checking a presented key costs one HMAC and a constant-time comparison
//! (`ring::hmac::verify`), against a record found by id in memory.

use std::fmt;

use base64::Engine as _;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::{ExposeSecret, SecretString};

/// The prefix of every virtual key.
pub const PREFIX: &str = "pk-";
/// Characters of a key's public id.
pub const ID_LEN: usize = 12;
/// Random bytes of a key's secret part.
const SECRET_BYTES: usize = 32;
/// Characters of the base64url (unpadded) secret part.
const SECRET_LEN: usize = 43;
const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// Why a key could not be made or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the system random number generator failed")]
    Random,
    #[error("the hashing secret must be at least 32 bytes")]
    WeakHashingSecret,
}

/// A newly made key: the whole key (shown to its owner once, never stored) and what is stored.
pub struct NewKey {
    pub key: SecretString,
    pub id: String,
    pub digest: Vec<u8>,
}

impl fmt::Debug for NewKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Makes and checks keys under one server hashing secret.
pub struct KeyHasher {
    key: hmac::Key,
    rng: SystemRandom,
}

impl fmt::Debug for KeyHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyHasher")
    }
}

impl KeyHasher {
    /// A hasher keyed by `secret` (at least 32 bytes).
    pub fn new(secret: &[u8]) -> Result<Self, KeyError> {
        if secret.len() < 32 {
            return Err(KeyError::WeakHashingSecret);
        }
        Ok(Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            rng: SystemRandom::new(),
        })
    }

    /// A new random key.
    pub fn generate(&self) -> Result<NewKey, KeyError> {
        let mut id_bytes = [0u8; ID_LEN];
        self.rng.fill(&mut id_bytes).map_err(|_| KeyError::Random)?;
        let id: String = id_bytes
            .iter()
            .map(|b| char::from(BASE32[usize::from(b & 31)]))
            .collect();
        let mut secret = [0u8; SECRET_BYTES];
        self.rng.fill(&mut secret).map_err(|_| KeyError::Random)?;
        let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
        secret.fill(0);
        let key = SecretString::from(format!("{PREFIX}{id}-{encoded}"));
        let digest = self.digest(key.expose_secret());
        Ok(NewKey { key, id, digest })
    }

    /// The stored digest of a whole key.
    pub fn digest(&self, key: &str) -> Vec<u8> {
        hmac::sign(&self.key, key.as_bytes()).as_ref().to_vec()
    }

    /// Whether `key` is the key behind `digest`, in constant time.
    pub fn verify(&self, key: &str, digest: &[u8]) -> bool {
        hmac::verify(&self.key, key.as_bytes(), digest).is_ok()
    }
}

/// The public id of a presented key, if it has the shape of a virtual key (else it may be a key
/// of another kind, such as one declared in the config file).
pub fn id_of(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('-')?;
    let id_ok = id.len() == ID_LEN && id.bytes().all(|b| BASE32.contains(&b));
    let secret_ok = secret.len() == SECRET_LEN
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (id_ok && secret_ok).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hasher() -> KeyHasher {
        KeyHasher::new(&[7u8; 32]).unwrap()
    }

    #[test]
    fn generated_keys_have_the_shape_and_verify() {
        let h = hasher();
        let new = h.generate().unwrap();
        let key = new.key.expose_secret();
        assert!(key.starts_with("pk-"), "{key}");
        assert_eq!(key.len(), PREFIX.len() + ID_LEN + 1 + SECRET_LEN);
        assert_eq!(id_of(key), Some(new.id.as_str()));
        assert!(h.verify(key, &new.digest));
        assert_eq!(new.digest.len(), 32);
        // Another key, or the same key under another server secret, does not verify.
        let other = h.generate().unwrap();
        assert_ne!(other.id, new.id);
        assert!(!h.verify(other.key.expose_secret(), &new.digest));
        let elsewhere = KeyHasher::new(&[8u8; 32]).unwrap();
        assert!(!elsewhere.verify(key, &new.digest));
        assert!(!format!("{new:?}").contains(key));
    }

    #[test]
    fn only_well_formed_keys_have_an_id() {
        let h = hasher();
        let key = h.generate().unwrap().key;
        let key = key.expose_secret();
        assert!(id_of(key).is_some());
        for bad in [
            "sk-test-key",
            "pk-",
            "pk-abc-def",
            &key.replacen("pk-", "pk_", 1),
            &key[..key.len() - 1],
            &format!("{key}x"),
            &key.to_uppercase(),
        ] {
            assert_eq!(id_of(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_hashing_secret_must_be_long() {
        assert_eq!(
            KeyHasher::new(b"short").unwrap_err(),
            KeyError::WeakHashingSecret
        );
    }
}
