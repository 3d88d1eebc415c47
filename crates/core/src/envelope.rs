//! Envelope encryption of secrets at rest (provider credentials in the store): each secret is
//! encrypted with its own random data key (AES-256-GCM), and the data key is encrypted
//! ("wrapped") with a master key that never leaves the gateway's memory. Rotating the master key
//! only re-wraps the small data keys ([`Keyring::rewrap`]); the secrets' ciphertexts stay as
//! they are.
//!
//! A master key is 32 random bytes, given base64-encoded (from the environment or a file). Its
//! id is the first 8 bytes of its SHA-256, in hex: derived, so there is nothing to configure and
//! nothing that can disagree with the key, and it reveals nothing usable about a 256-bit key. The
//! keyring holds the current master key (which seals) and previous ones (which still open, until
//! everything has been re-wrapped).
//!
//! Both encryptions bind `aad` (associated data: the row's identity, such as a credential's
//! id), so a ciphertext copied into another row does not open there. AES-GCM comes from ring,
//! which the TLS stack already brings; nonces are random 96-bit values from the system RNG, safe
//! because every data key encrypts exactly one message and every wrap uses a fresh nonce.

use std::fmt;

use base64::Engine as _;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// Bytes of an AES-256 key.
const KEY_LEN: usize = 32;
/// Associated data of a data-key wrap, besides the caller's `aad`: keeps a wrapped key from
/// being presented as a secret's ciphertext and the other way round.
const WRAP_CONTEXT: &[u8] = b"portcullis/envelope/v1/data-key";
const DATA_CONTEXT: &[u8] = b"portcullis/envelope/v1/data";

/// Why sealing or opening failed. Messages name no key material and no plaintext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("a master key must be 32 bytes, base64-encoded")]
    BadMasterKey,
    #[error("the secret was sealed under master key {0}, which is not in the keyring")]
    UnknownKey(String),
    #[error("the secret does not open: it was altered, or belongs to another record")]
    Corrupt,
    #[error("the system random number generator failed")]
    Random,
}

/// A secret as stored: which master key wrapped its data key, the wrapped data key, and the
/// secret's ciphertext. Each byte field is `nonce || ciphertext || tag`.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    pub key_id: String,
    pub wrapped_key: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealed")
            .field("key_id", &self.key_id)
            .field("wrapped_key_bytes", &self.wrapped_key.len())
            .field("ciphertext_bytes", &self.ciphertext.len())
            .finish()
    }
}

struct MasterKey {
    id: String,
    key: LessSafeKey,
}

/// The master keys: the current one seals, every one opens.
pub struct Keyring {
    current: MasterKey,
    previous: Vec<MasterKey>,
    rng: SystemRandom,
}

impl fmt::Debug for Keyring {
    /// The key ids only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current.id)
            .field(
                "previous",
                &self.previous.iter().map(|k| &k.id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Keyring {
    /// A keyring from base64 master keys: `current` seals, `previous` still open.
    pub fn new(current: &SecretString, previous: &[SecretString]) -> Result<Self, EnvelopeError> {
        Ok(Self {
            current: master_key(current)?,
            previous: previous.iter().map(master_key).collect::<Result<_, _>>()?,
            rng: SystemRandom::new(),
        })
    }

    /// The id of the master key that seals.
    pub fn current_id(&self) -> &str {
        &self.current.id
    }

    /// The ids of every master key: the current one first, then the previous ones.
    pub fn key_ids(&self) -> Vec<String> {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .map(|k| k.id.clone())
            .collect()
    }

    /// Whether a master key with this id is in the keyring (current or previous).
    pub fn has_key(&self, key_id: &str) -> bool {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .any(|k| k.id == key_id)
    }

    /// Encrypts `plaintext` for the record `aad` under a new data key, wrapped by the current
    /// master key.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Sealed, EnvelopeError> {
        let mut data_key = [0u8; KEY_LEN];
        self.rng
            .fill(&mut data_key)
            .map_err(|_| EnvelopeError::Random)?;
        let key = aes_key(&data_key)?;
        let ciphertext = self.encrypt(&key, plaintext, DATA_CONTEXT, aad)?;
        let wrapped_key = self.encrypt(&self.current.key, &data_key, WRAP_CONTEXT, aad)?;
        data_key.fill(0);
        Ok(Sealed {
            key_id: self.current.id.clone(),
            wrapped_key,
            ciphertext,
        })
    }

    /// Decrypts a sealed secret of the record `aad`.
    pub fn open(&self, sealed: &Sealed, aad: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
        let mut data_key = self.unwrap_key(sealed, aad)?;
        let key = aes_key(&data_key);
        data_key.fill(0);
        decrypt(&key?, &sealed.ciphertext, DATA_CONTEXT, aad)
    }

    /// Decrypts a sealed secret that is text (an API key, a token).
    pub fn open_string(&self, sealed: &Sealed, aad: &[u8]) -> Result<SecretString, EnvelopeError> {
        let bytes = self.open(sealed, aad)?;
        String::from_utf8(bytes)
            .map(SecretString::from)
            .map_err(|_| EnvelopeError::Corrupt)
    }

    /// Whether `sealed` was wrapped by a master key other than the current one.
    pub fn needs_rewrap(&self, sealed: &Sealed) -> bool {
        sealed.key_id != self.current.id
    }

    /// The same secret with its data key re-wrapped under the current master key (master key
    /// rotation). The secret's ciphertext is unchanged.
    pub fn rewrap(&self, sealed: &Sealed, aad: &[u8]) -> Result<Sealed, EnvelopeError> {
        let mut data_key = self.unwrap_key(sealed, aad)?;
        let wrapped_key = self.encrypt(&self.current.key, &data_key, WRAP_CONTEXT, aad);
        data_key.fill(0);
        Ok(Sealed {
            key_id: self.current.id.clone(),
            wrapped_key: wrapped_key?,
            ciphertext: sealed.ciphertext.clone(),
        })
    }

    fn unwrap_key(&self, sealed: &Sealed, aad: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
        let master = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id == sealed.key_id)
            .ok_or_else(|| EnvelopeError::UnknownKey(sealed.key_id.clone()))?;
        let data_key = decrypt(&master.key, &sealed.wrapped_key, WRAP_CONTEXT, aad)?;
        if data_key.len() != KEY_LEN {
            return Err(EnvelopeError::Corrupt);
        }
        Ok(data_key)
    }

    /// `nonce || ciphertext || tag` of `plaintext` under `key`.
    fn encrypt(
        &self,
        key: &LessSafeKey,
        plaintext: &[u8],
        context: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, EnvelopeError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| EnvelopeError::Random)?;
        let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + AES_256_GCM.tag_len());
        out.extend_from_slice(&nonce);
        let mut body = plaintext.to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(associated(context, aad)),
            &mut body,
        )
        .map_err(|_| EnvelopeError::Corrupt)?;
        out.extend_from_slice(&body);
        body.fill(0);
        Ok(out)
    }
}

/// A new random master key, base64-encoded, as the configuration takes it.
pub fn generate_master_key() -> Result<SecretString, EnvelopeError> {
    let mut bytes = [0u8; KEY_LEN];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| EnvelopeError::Random)?;
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    bytes.fill(0);
    Ok(SecretString::from(encoded))
}

fn decrypt(
    key: &LessSafeKey,
    sealed: &[u8],
    context: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>, EnvelopeError> {
    if sealed.len() < NONCE_LEN + AES_256_GCM.tag_len() {
        return Err(EnvelopeError::Corrupt);
    }
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| EnvelopeError::Corrupt)?;
    let mut body = body.to_vec();
    let plain_len = key
        .open_in_place(nonce, Aad::from(associated(context, aad)), &mut body)
        .map_err(|_| EnvelopeError::Corrupt)?
        .len();
    body.truncate(plain_len);
    Ok(body)
}

/// The associated data of one encryption: a fixed context, then the caller's record identity,
/// length-prefixed so that no two (context, aad) pairs read the same.
fn associated(context: &[u8], aad: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(context.len() + 8 + aad.len());
    out.extend_from_slice(context);
    out.extend_from_slice(&(aad.len() as u64).to_be_bytes());
    out.extend_from_slice(aad);
    out
}

fn aes_key(bytes: &[u8]) -> Result<LessSafeKey, EnvelopeError> {
    UnboundKey::new(&AES_256_GCM, bytes)
        .map(LessSafeKey::new)
        .map_err(|_| EnvelopeError::BadMasterKey)
}

fn master_key(encoded: &SecretString) -> Result<MasterKey, EnvelopeError> {
    let mut bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.expose_secret().trim())
        .map_err(|_| EnvelopeError::BadMasterKey)?;
    if bytes.len() != KEY_LEN {
        bytes.fill(0);
        return Err(EnvelopeError::BadMasterKey);
    }
    let id = hex::encode(&Sha256::digest(&bytes)[..8]);
    let key = aes_key(&bytes);
    bytes.fill(0);
    Ok(MasterKey { id, key: key? })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SecretString {
        SecretString::from(base64::engine::general_purpose::STANDARD.encode([byte; KEY_LEN]))
    }

    #[test]
    fn seals_and_opens_bound_to_the_record() {
        let ring = Keyring::new(&key(1), &[]).unwrap();
        let sealed = ring.seal(b"sk-provider-secret", b"credential:1").unwrap();
        assert_eq!(sealed.key_id, ring.current_id());
        assert_eq!(sealed.key_id.len(), 16);
        assert!(!sealed.ciphertext.windows(6).any(|w| w == b"secret"));
        let opened = ring.open_string(&sealed, b"credential:1").unwrap();
        assert_eq!(opened.expose_secret(), "sk-provider-secret");
        // Another record's identity, or any altered byte, does not open.
        assert_eq!(
            ring.open(&sealed, b"credential:2").unwrap_err(),
            EnvelopeError::Corrupt
        );
        for field in 0..2 {
            let mut bad = sealed.clone();
            let bytes = if field == 0 {
                &mut bad.ciphertext
            } else {
                &mut bad.wrapped_key
            };
            let last = bytes.len() - 1;
            bytes[last] ^= 1;
            assert_eq!(
                ring.open(&bad, b"credential:1").unwrap_err(),
                EnvelopeError::Corrupt
            );
        }
        // The wrapped key cannot pose as the ciphertext.
        let swapped = Sealed {
            ciphertext: sealed.wrapped_key.clone(),
            ..sealed.clone()
        };
        assert!(ring.open(&swapped, b"credential:1").is_err());
        // Two seals of the same secret differ (fresh data keys and nonces).
        let again = ring.seal(b"sk-provider-secret", b"credential:1").unwrap();
        assert_ne!(again.ciphertext, sealed.ciphertext);
    }

    #[test]
    fn rotation_rewraps_under_the_new_key() {
        let old = Keyring::new(&key(1), &[]).unwrap();
        let sealed = old.seal(b"token", b"c").unwrap();
        let rotated = Keyring::new(&key(2), &[key(1)]).unwrap();
        assert!(rotated.needs_rewrap(&sealed));
        assert_eq!(rotated.open(&sealed, b"c").unwrap(), b"token");
        let rewrapped = rotated.rewrap(&sealed, b"c").unwrap();
        assert_eq!(rewrapped.key_id, rotated.current_id());
        assert_eq!(rewrapped.ciphertext, sealed.ciphertext);
        assert!(!rotated.needs_rewrap(&rewrapped));
        // Once the old key is retired, only re-wrapped secrets open.
        let retired = Keyring::new(&key(2), &[]).unwrap();
        assert_eq!(retired.open(&rewrapped, b"c").unwrap(), b"token");
        assert_eq!(
            retired.open(&sealed, b"c").unwrap_err(),
            EnvelopeError::UnknownKey(sealed.key_id.clone())
        );
    }

    #[test]
    fn generated_master_keys_are_new_and_usable() {
        let (a, b) = (
            generate_master_key().unwrap(),
            generate_master_key().unwrap(),
        );
        assert_ne!(a.expose_secret(), b.expose_secret());
        let ring = Keyring::new(&a, &[b]).unwrap();
        let ids = ring.key_ids();
        assert_eq!(ids.len(), 2);
        assert_eq!(ids[0], ring.current_id());
        assert!(ring.has_key(&ids[1]) && !ring.has_key("0000000000000000"));
        let sealed = ring.seal(b"x", b"r").unwrap();
        assert_eq!(ring.open(&sealed, b"r").unwrap(), b"x");
    }

    #[test]
    fn bad_master_keys_and_redacted_debug() {
        for bad in ["", "not base64!", "AAAA"] {
            assert_eq!(
                Keyring::new(&SecretString::from(bad), &[]).unwrap_err(),
                EnvelopeError::BadMasterKey
            );
        }
        let ring = Keyring::new(&key(7), &[key(8)]).unwrap();
        let shown = format!("{ring:?} {:?}", ring.seal(b"hunter2", b"x").unwrap());
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains(ring.current_id()), "{shown}");
        assert!(shown.contains("ciphertext_bytes"), "{shown}");
    }
}
