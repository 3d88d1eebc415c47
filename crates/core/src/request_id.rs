//! Request ids: taken from the client's `x-request-id` when it is sane, generated otherwise.
//! Generation is a per-process random prefix plus a counter: unique, cheap, and unguessable
//! enough to correlate logs (it is not a secret).

use std::hash::{BuildHasher, RandomState};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

static PREFIX: LazyLock<u64> = LazyLock::new(|| RandomState::new().hash_one(std::process::id()));
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The longest client-supplied id the gateway keeps.
pub const MAX_LEN: usize = 128;

/// Returns the client's id if it is 1..=128 visible ASCII characters, else a new one.
pub fn accept_or_generate(client: Option<&[u8]>) -> String {
    if let Some(id) = client
        && !id.is_empty()
        && id.len() <= MAX_LEN
        && id.iter().all(|b| b.is_ascii_graphic())
    {
        return String::from_utf8_lossy(id).into_owned();
    }
    generate()
}

/// A new id such as `req_3f2a9c1d0b7e4a51000000000000002a`.
pub fn generate() -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut id = String::with_capacity(36);
    id.push_str("req_");
    for word in [*PREFIX, n] {
        for shift in (0..16).rev() {
            let nibble = ((word >> (shift * 4)) & 0xf) as u8;
            id.push(char::from(b"0123456789abcdef"[usize::from(nibble)]));
        }
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_sane_ids_and_replaces_others() {
        assert_eq!(accept_or_generate(Some(b"abc-123")), "abc-123");
        assert!(accept_or_generate(Some(b"has space")).starts_with("req_"));
        assert!(accept_or_generate(Some(&[b'a'; 129])).starts_with("req_"));
        assert!(accept_or_generate(None).starts_with("req_"));
        assert_ne!(generate(), generate());
        let id = generate();
        assert_eq!(id.len(), 36);
        assert!(id[4..].bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
