//! Provider credentials kept in the store, encrypted at rest, and the two-phase config load that
//! uses them.
//!
//! A credential's secret is sealed with envelope encryption ([`portcullis_core::envelope`])
//! under the current master key of `secrets:`, bound to the row's id as associated data: the
//! store's `ciphertext`, `wrapped_key` and `key_id` columns are the envelope's
//! [`Sealed`] fields, and ciphertext copied into another row does not open there. Plaintext exists
//! only in `SecretString`s, and in the providers built from the config.
//!
//! Loading a config that references stored credentials (`${credential:NAME}`): phase one
//! (`Config::bootstrap`) reads the store and the master keys; the referenced credentials are
//! read from the store and decrypted; phase two validates the whole file with them. At start the
//! store is opened between the phases; a reload reuses the store and keyring opened at start.

use std::collections::BTreeSet;
use std::hash::{DefaultHasher, Hash, Hasher};

use portcullis_core::config::{Config, ConfigProblem, Credentials, ProcessEnv};
use portcullis_core::envelope::{EnvelopeError, Keyring, Sealed};
use portcullis_store::{
    CredentialFilter, CredentialUpdate, EncryptedSecret, PageRequest, ProviderCredential, Store,
    StoreError,
};
use secrecy::{ExposeSecret, SecretString};

/// The associated data a credential's secret is sealed with: the table and the row's id.
fn aad(id: &str) -> Vec<u8> {
    format!("provider_credentials/{id}").into_bytes()
}

/// Seals `secret` for the credential row `id` under the current master key.
pub fn seal(
    keyring: &Keyring,
    id: &str,
    secret: &SecretString,
) -> Result<EncryptedSecret, EnvelopeError> {
    let sealed = keyring.seal(secret.expose_secret().as_bytes(), &aad(id))?;
    Ok(EncryptedSecret {
        ciphertext: sealed.ciphertext,
        wrapped_key: sealed.wrapped_key,
        key_id: sealed.key_id,
    })
}

fn sealed(credential: &ProviderCredential) -> Sealed {
    Sealed {
        key_id: credential.key_id.clone(),
        wrapped_key: credential.wrapped_key.clone(),
        ciphertext: credential.ciphertext.clone(),
    }
}

/// Decrypts a stored credential's secret.
pub fn open(
    keyring: &Keyring,
    credential: &ProviderCredential,
) -> Result<SecretString, EnvelopeError> {
    keyring.open_string(&sealed(credential), &aad(&credential.id))
}

/// Why a credential cannot be opened, for an operator: which key is missing and where to add it.
pub fn explain(error: &EnvelopeError) -> String {
    match error {
        EnvelopeError::UnknownKey(id) => format!(
            "it is sealed under master key {id}, which is not configured (add that key to \
             secrets.previous_master_keys or secrets.previous_master_key_files)"
        ),
        other => other.to_string(),
    }
}

/// Every credential of the store, page by page.
pub async fn list_all(store: &dyn Store) -> Result<Vec<ProviderCredential>, StoreError> {
    let mut all = Vec::new();
    let mut page = PageRequest::first(portcullis_store::MAX_PAGE);
    loop {
        let got = store
            .list_credentials(&CredentialFilter::default(), &page)
            .await?;
        all.extend(got.items);
        match got.next_after {
            Some(after) => page.after = Some(after),
            None => return Ok(all),
        }
    }
}

/// The credentials named in `names`, decrypted; one that does not open is kept with the reason.
pub async fn decrypt(
    store: &dyn Store,
    keyring: &Keyring,
    names: &BTreeSet<String>,
) -> Result<Credentials, StoreError> {
    let mut credentials = Credentials::new();
    if names.is_empty() {
        return Ok(credentials);
    }
    for c in list_all(store).await? {
        if !names.contains(&c.name) {
            continue;
        }
        match open(keyring, &c) {
            Ok(secret) => credentials.insert(c.name, c.provider, secret),
            Err(e) => credentials.insert_unusable(c.name, c.provider, explain(&e)),
        }
    }
    Ok(credentials)
}

/// A fingerprint of the store's credentials (ids, names, key ids and update times): it changes
/// whenever a credential is created, changed or deleted, on this replica or another.
pub async fn fingerprint(store: &dyn Store) -> Result<u64, StoreError> {
    let mut h = DefaultHasher::new();
    for c in list_all(store).await? {
        (c.id, c.name, c.key_id, c.updated_at.unix_timestamp_nanos()).hash(&mut h);
    }
    Ok(h.finish())
}

/// Phase two of loading `text` (phase one's store and keyring at hand): decrypts the credentials
/// the file references and validates the whole file with them. Without a store or a keyring, a
/// reference is a problem that says what to configure.
pub async fn load(
    text: &str,
    store: Option<&dyn Store>,
    keyring: Option<&Keyring>,
) -> Result<Config, Vec<ConfigProblem>> {
    let boot = Config::bootstrap(text, &ProcessEnv)?;
    let credentials = match (store, keyring) {
        (Some(store), Some(keyring)) => Some(
            decrypt(store, keyring, &boot.references)
                .await
                .map_err(|e| {
                    vec![ConfigProblem::new(
                        "",
                        format!("cannot read the stored credentials: {e}"),
                    )]
                })?,
        ),
        _ => None,
    };
    Config::from_yaml_with_credentials(text, &ProcessEnv, credentials.as_ref())
}

/// What `portcullis secrets rotate` did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RotateReport {
    /// Credentials re-wrapped under the current master key.
    pub rewrapped: usize,
    /// Credentials already sealed under it.
    pub current: usize,
    /// Credentials left as they were, by name and id, with the reason.
    pub failed: Vec<(String, String, String)>,
}

/// Re-wraps every credential not sealed under the current master key (its data key is
/// re-encrypted; the secret's ciphertext stays). Each change applies only if the row is still
/// as read, so a secret replaced meanwhile is never overwritten. A credential that cannot be
/// opened is reported and left as it is; the others are still re-wrapped.
pub async fn rotate(store: &dyn Store, keyring: &Keyring) -> Result<RotateReport, StoreError> {
    let mut report = RotateReport::default();
    for c in list_all(store).await? {
        if !keyring.needs_rewrap(&sealed(&c)) {
            report.current += 1;
            continue;
        }
        let rewrapped = match keyring.rewrap(&sealed(&c), &aad(&c.id)) {
            Ok(r) => r,
            Err(e) => {
                report.failed.push((c.name, c.id, explain(&e)));
                continue;
            }
        };
        let update = CredentialUpdate {
            name: None,
            secret: Some(EncryptedSecret {
                ciphertext: rewrapped.ciphertext,
                wrapped_key: rewrapped.wrapped_key,
                key_id: rewrapped.key_id,
            }),
            if_updated_at: Some(c.updated_at),
        };
        match store.update_credential(&c.id, update).await {
            Ok(_) => report.rewrapped += 1,
            Err(StoreError::Conflict { .. }) => report.failed.push((
                c.name,
                c.id,
                "it changed while being re-wrapped; run the rotation again".into(),
            )),
            Err(StoreError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use portcullis_core::envelope::generate_master_key;
    use portcullis_store::{NewCredential, SqliteStore, new_id};

    use super::*;

    async fn create(
        store: &dyn Store,
        ring: &Keyring,
        name: &str,
        secret: &str,
    ) -> ProviderCredential {
        let id = new_id();
        let sealed = seal(ring, &id, &SecretString::from(secret)).unwrap();
        store
            .create_credential(NewCredential {
                id,
                name: name.into(),
                provider: "openai".into(),
                ciphertext: sealed.ciphertext,
                wrapped_key: sealed.wrapped_key,
                key_id: sealed.key_id,
            })
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn sealed_for_its_row_and_rotated_without_touching_the_secret() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("s.db")).await.unwrap();
        let (key_a, key_b, key_c) = (
            generate_master_key().unwrap(),
            generate_master_key().unwrap(),
            generate_master_key().unwrap(),
        );
        let a = Keyring::new(&key_a, &[]).unwrap();
        let one = create(&store, &a, "one", "sk-one").await;
        let two = create(&store, &a, "two", "sk-two").await;
        assert_eq!(open(&a, &one).unwrap().expose_secret(), "sk-one");
        assert!(!one.ciphertext.windows(6).any(|w| w == b"sk-one"));

        // Another row's bytes do not open under this row's id.
        let swapped = ProviderCredential {
            ciphertext: two.ciphertext.clone(),
            wrapped_key: two.wrapped_key.clone(),
            ..one.clone()
        };
        assert_eq!(open(&a, &swapped).unwrap_err(), EnvelopeError::Corrupt);

        // Rotate to B with A still able to open: both re-wrapped, then nothing to do.
        let b = Keyring::new(&key_b, std::slice::from_ref(&key_a)).unwrap();
        let report = rotate(&store, &b).await.unwrap();
        assert_eq!(
            (report.rewrapped, report.current, report.failed.len()),
            (2, 0, 0)
        );
        let again = rotate(&store, &b).await.unwrap();
        assert_eq!((again.rewrapped, again.current), (0, 2));
        let only_b = Keyring::new(&key_b, &[]).unwrap();
        let one_now = store.get_credential(&one.id).await.unwrap();
        assert_eq!(one_now.ciphertext, one.ciphertext);
        assert_eq!(one_now.key_id, only_b.current_id());
        assert_eq!(open(&only_b, &one_now).unwrap().expose_secret(), "sk-one");

        // A credential sealed under a key that is not configured fails alone.
        let c = Keyring::new(&key_c, &[]).unwrap();
        let stray = create(&store, &c, "stray", "sk-stray").await;
        let report = rotate(&store, &only_b).await.unwrap();
        assert_eq!((report.rewrapped, report.current), (0, 2));
        assert_eq!(report.failed.len(), 1);
        assert_eq!(report.failed[0].0, "stray");
        assert!(
            report.failed[0].2.contains(c.current_id()),
            "{:?}",
            report.failed
        );
        assert_eq!(store.get_credential(&stray.id).await.unwrap(), stray);

        // Decryption for a config: only the names asked for; the stray one with its reason.
        let names = ["one", "stray"].map(str::to_owned).into_iter().collect();
        let creds = decrypt(&store, &only_b, &names).await.unwrap();
        assert_eq!(creds.len(), 2);
        store.close().await;
    }
}
